/** @type {import('jest').Config} */
module.exports = {
  displayName: 'state-machine',
  preset: '../../jest.preset.js',
  rootDir: __dirname,
};
