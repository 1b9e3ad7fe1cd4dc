/** @type {import('jest').Config} */
module.exports = {
  displayName: 'metadata-service',
  preset: '../../jest.preset.js',
  rootDir: __dirname,
};
