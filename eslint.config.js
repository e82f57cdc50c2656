// Lint rules that keep the layering honest: each module folder of src/ is
// used only through its index.ts, module folders never import each other in
// a cycle, and the usual TypeScript hygiene (no `any`, no floating promises).
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const MODULES = ['cli', 'config', 'fs', 'fuse', 'http', 'internal', 'lease', 'ltx', 'store'];

/** From outside a module folder, only its index.js may be imported. */
const onlyThroughIndex = MODULES.map((m) => ({
  group: [`**/${m}/*`, `!**/${m}/index.js`, `**/${m}/*/**`],
  message: `import src/${m}/ through its public surface, src/${m}/index.ts`,
}));

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'bench/results/', '.demo/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js', '.mjs'] } } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-duplicates': 'error',
      'no-restricted-imports': ['error', { patterns: onlyThroughIndex }],
    },
  },
  // Inside a module folder, siblings are imported directly ('./x.js'), which
  // the patterns above never match; a folder's own files may also reach its
  // subfolders (http/ -> http/protocol/index.js is still required from outside).
  ...MODULES.map((m) => ({
    files: [`src/${m}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: onlyThroughIndex.filter((_, i) => MODULES[i] !== m) }],
    },
  })),
  {
    files: ['test/**/*.ts', 'bench/**/*.mjs', '*.ts', '*.js'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['bench/**/*.mjs', 'src/**/*.mjs', '*.js'],
    languageOptions: { globals: globals.node },
  },
);
