// ESLint for the lab extension, as JupyterLab's extension template configures it: typescript-eslint's
// recommended rules, React and its hooks, interface names starting with I, no `any`, and Prettier
// owning the layout (eslint-config-prettier switches off what would fight it). The OIDC tests' provider
// (tests/oidc/provider, plain JavaScript on Node) gets the recommended rules too.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import react from 'eslint-plugin-react';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/lib/',
      '**/node_modules/',
      '**/*.js',
      '**/*.mjs',
      '!tests/oidc/provider/*.mjs',
      '.venv/',
      'server_extension/'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['labextension/src/**/*.{ts,tsx}', 'bench/**/*.{ts,tsx}'],
    plugins: { react, 'react-hooks': reactHooks },
    languageOptions: {
      globals: { ...globals.browser, ...globals.node, ...globals.jest }
    },
    settings: { react: { version: 'detect' } },
    rules: {
      ...react.configs.recommended.rules,
      ...reactHooks.configs.recommended.rules,
      '@typescript-eslint/naming-convention': [
        'error',
        {
          selector: 'interface',
          format: ['PascalCase'],
          custom: { regex: '^I[A-Z]', match: true }
        }
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { args: 'none', varsIgnorePattern: '^_' }
      ],
      '@typescript-eslint/no-namespace': 'off',
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'no-console': ['error', { allow: ['warn', 'error'] }],
      'prefer-arrow-callback': 'error'
    }
  },
  {
    files: ['tests/oidc/provider/*.mjs'],
    languageOptions: { globals: globals.node },
    rules: { eqeqeq: 'error' }
  },
  prettier
);
