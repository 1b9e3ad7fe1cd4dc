/** @type {import('jest').Config} */
module.exports = {
  displayName: 'raft-core',
  preset: '../../jest.preset.js',
  rootDir: __dirname,
};
