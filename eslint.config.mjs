// ESLint flat config: typescript-eslint's recommended rules over the whole project; formatting is
// Prettier's (`npm run format`), so eslint-config-prettier turns the stylistic rules off.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'src/generated/', 'dist/', '.cache/', '.stack/', '.ci/out/', 'bench/results/', 'test/output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    rules: {
      // `_` marks a parameter kept for its position (resolvers, callbacks)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // tests and a few adapters read untyped JSON (GraphQL answers, KafkaJS internals)
      '@typescript-eslint/no-explicit-any': 'off',
      // the exhaustive `never` checks of the domain's switches assign to a throwaway
      'no-case-declarations': 'off',
    },
  },
  {
    // the drop console's script runs in the browser, with graphql-ws's browser build as a global
    files: ['src/api/console/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, graphqlWs: 'readonly' } },
  },
);
