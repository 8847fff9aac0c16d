// ESLint flat config (`npm run lint`): @eslint/js recommended plus
// typescript-eslint recommended, syntax only (no type information) so that it
// stays fast; the type checker runs separately as `npm run typecheck`.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'bench/results/', 'demo-run/']),
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // `_`-prefixed names are deliberately unused (interface-shaped
      // callbacks, positional parameters, destructuring)
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_',
        varsIgnorePattern: '^_',
        caughtErrorsIgnorePattern: '^_',
        destructuredArrayIgnorePattern: '^_',
      }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // test and benchmark helpers read JSON from the simulators' HTTP
      // control API; `any` there is the honest type
      '@typescript-eslint/no-explicit-any': 'off',
      // tests match column-aligned usage and help text literally: the runs
      // of spaces are the thing under test, `{3}` would hide the layout
      'no-regex-spaces': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
  },
);
