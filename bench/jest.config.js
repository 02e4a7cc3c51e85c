/**
 * Jest runs the panel benchmark with the lab extension's own transforms and setup.
 *
 * `make bench-dask` runs it with NODE_ENV=production, so React is its production build, as in
 * JupyterLab.
 */
const path = require('path');

const labextension = path.resolve(__dirname, '..', 'labextension');
const config = require(path.join(labextension, 'jest.config.js'));

module.exports = {
  ...config,
  rootDir: labextension,
  roots: [__dirname],
  testMatch: ['**/*.bench.tsx'],
  transform: {
    ...config.transform,
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: path.join(__dirname, 'tsconfig.json') }]
  }
};
