/**
 * Jest runs the TypeScript specs in src/__tests__ through ts-jest.
 *
 * The default environment is jsdom (the panel builds DOM nodes); specs that need Node's own
 * fetch, Request and Response ask for `@jest-environment node` in their docblock.
 */
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/src'],
  setupFiles: ['<rootDir>/jest.setup.js'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }]
  }
};
