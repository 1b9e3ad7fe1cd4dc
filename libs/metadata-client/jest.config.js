/** @type {import('jest').Config} */
module.exports = {
  displayName: 'metadata-client',
  preset: '../../jest.preset.js',
  rootDir: __dirname,
};
