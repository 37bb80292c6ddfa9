// ESLint flat config. Besides ordinary linting it enforces the layering rule of
// DESIGN.md: common <- spec <- hw <- l0 <- cli/bench/web. A file may only import
// from its own layer or the layers below it; l0 sees hw only through hw/index.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const layer = (files, forbidden, message) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((group) => ({ group: [group], message })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'guests/**', 'web/**'] },
  js.configs.recommended,
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: globals.node } },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-fallthrough': 'off',
      'no-case-declarations': 'off',
    },
  },
  layer(['src/common/**'], ['**/spec/**', '**/hw/**', '**/l0/**', '**/cli/**', '**/bench/**'], 'src/common imports nothing from higher layers'),
  layer(['src/spec/**'], ['**/hw/**', '**/l0/**', '**/cli/**', '**/bench/**'], 'src/spec is data: it may import only src/common'),
  layer(['src/hw/**'], ['**/l0/**', '**/cli/**', '**/bench/**'], 'src/hw knows nothing of L0 or the CLI'),
  layer(['src/l0/**'], ['**/hw/*/**', '**/cli/**', '**/bench/**'], 'src/l0 reaches the machine only through hw/index.ts'),
);
