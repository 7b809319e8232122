/**
 * The architecture's dependency rules (docs/architecture.md), checked by `npm run deps`, which
 * `npm run check` and `.ci/run` call. A broken rule fails with the rule, the importing file and
 * the import named.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'core-not-to-adapters-trainer-jobs',
      comment:
        'The core is platform-neutral: it asks for training and platform work through ports (core/ports.ts) that adapters and jobs implement.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(adapters|trainer|jobs)/' },
    },
    {
      name: 'maths-not-to-core-adapters-db-trainer',
      comment:
        'ml/, explain/ and imaging/ are maths and rendering, and inference/ runs them in worker threads: they know no commands, platforms, database or training jobs.',
      severity: 'error',
      from: { path: '^src/(ml|explain|imaging|inference)/' },
      to: { path: '^src/(core|adapters|db|trainer)/' },
    },
    {
      name: 'nothing-to-cli',
      comment: 'The command line is an entry point: thin callers of the functions the chat uses.',
      severity: 'error',
      from: { pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'nothing-to-scripts',
      comment: 'scripts/ are entry points run by hand or by npm scripts.',
      severity: 'error',
      from: { pathNot: '^scripts/' },
      to: { path: '^scripts/' },
    },
    {
      name: 'no-cycle-between-top-level-folders',
      comment:
        'Two top-level folders of src/ that import each other are one component in two places: move the shared part below both.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/[^/]+$' },
      to: { path: '^src/[^/]+$', circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|generated)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
