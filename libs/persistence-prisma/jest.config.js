/** @type {import('jest').Config} */
module.exports = {
  displayName: 'persistence-prisma',
  preset: '../../jest.preset.js',
  rootDir: __dirname,
};
