/**
 * Jest runs the TypeScript specs under src/ through ts-jest.
 *
 * JupyterLab and Lumino ship ES modules only; babel-jest turns those (and only those) into
 * CommonJS. The default environment is jsdom (the panels build DOM nodes); specs that need Node's
 * own fetch, Request and Response ask for `@jest-environment node` in their docblock.
 */
const esModules = [
  '@codemirror',
  '@jupyter',
  '@jupyterlab',
  '@lumino',
  '@microsoft',
  '@rjsf',
  'exenv-es6',
  'lib0',
  'nanoid',
  'uplot',
  'y-protocols',
  'yjs'
].join('|');

module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/src'],
  setupFiles: ['<rootDir>/jest.setup.js'],
  testMatch: ['**/__tests__/**/*.spec.ts?(x)'],
  moduleNameMapper: {
    '\\.(css|less|sass|scss)$': 'identity-obj-proxy',
    '\\.svg$': '<rootDir>/jest.svg.js'
  },
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }],
    '^.+\\.jsx?$': ['babel-jest', { presets: [['@babel/preset-env', { targets: { node: 'current' } }]] }]
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esModules})/)`]
};
