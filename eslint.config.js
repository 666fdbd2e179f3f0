// ESLint for the browser's modules (static/js) and their unit tests (tests/js), run by
// scripts/lint-js.sh. The vendored livekit-client bundle is not ours to lint.
import js from '@eslint/js';
import globals from 'globals';

export default [
  // Ours is static/js, tests/js and this file: everything else (virtualenvs, vendored bundles,
  // test artifacts) is someone else's code.
  { ignores: ['**', '!static/', '!static/js/', '!static/js/**', '!tests/', '!tests/js/', '!tests/js/**', '!eslint.config.js'] },
  { ignores: ['static/js/vendor/**', '**/livekit-client*.js'] },
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-unused-vars': ['error', { args: 'after-used', caughtErrors: 'none' }],
      'no-implicit-globals': 'error',
      'no-shadow': 'error',
      'no-throw-literal': 'error',
      'no-promise-executor-return': 'error',
      'no-self-compare': 'error',
      'no-template-curly-in-string': 'error',
      'no-unmodified-loop-condition': 'error',
      'no-unreachable-loop': 'error',
      'object-shorthand': 'error',
      curly: ['error', 'multi-line'],
    },
  },
  {
    files: ['static/js/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.browser },
  },
  {
    files: ['tests/js/**/*.js', 'eslint.config.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.node },
  },
];
