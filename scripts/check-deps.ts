/**
 * `npm run deps`: checks the architecture's dependency rules (`.dependency-cruiser.cjs`,
 * explained in docs/architecture.md) with dependency-cruiser's API over `src/`, `scripts/` and
 * `bench/`. Prints one line per broken rule, naming the rule, the importing file and the import,
 * and exits with 1; prints a one-line summary and exits with 0 when every rule holds.
 *
 * The API rather than the `depcruise` command: dependency-cruiser 18's command refuses to start
 * on Node 20, which this project supports; its API runs there.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** One broken rule. */
export interface DependencyViolation {
  readonly rule: string;
  /** The importing module (or folder, for a folder cycle), relative to the base folder. */
  readonly from: string;
  /** The imported module (or folder). */
  readonly to: string;
  /** The import as written in the source, when dependency-cruiser reports it. */
  readonly importText?: string;
  /** For a cycle, the modules or folders around it. */
  readonly cycle?: readonly string[];
  /** Why the rule exists (its `comment` in the configuration). */
  readonly why?: string;
}

/** The rule set in `.dependency-cruiser.cjs`. */
export function loadRules(configFile = path.join(ROOT, '.dependency-cruiser.cjs')): IConfiguration {
  return createRequire(import.meta.url)(configFile) as IConfiguration;
}

/**
 * Cruises `paths` under `baseDir` with `rules` and returns every violation.
 * @throws {Error} when dependency-cruiser cannot run (a file it cannot parse, a bad rule).
 */
export async function checkDependencies(
  baseDir: string = ROOT,
  paths: readonly string[] = ['src', 'scripts', 'bench'],
  rules: IConfiguration = loadRules(),
): Promise<DependencyViolation[]> {
  const present = paths.filter((p) => p);
  const options = rules.options ?? {};
  const result = await cruise([...present], {
    ...options,
    baseDir,
    validate: true,
    ruleSet: { forbidden: rules.forbidden ?? [] },
  });
  const output = result.output as ICruiseResult;
  const comments = new Map((rules.forbidden ?? []).map((r) => [r.name, r.comment]));
  return output.summary.violations.map((v) => {
    const why = comments.get(v.rule.name);
    return {
      rule: v.rule.name,
      from: v.from,
      to: v.to,
      ...(v.unresolvedTo !== undefined ? { importText: v.unresolvedTo } : {}),
      ...(v.cycle ? { cycle: v.cycle.map((c) => c.name) } : {}),
      ...(why !== undefined ? { why } : {}),
    };
  });
}

/** One line per violation: `error <rule>: <from> imports '<import>' (<to>)`, then why. */
export function formatViolation(v: DependencyViolation): string {
  const what = v.cycle
    ? `${v.from} -> ${v.cycle.join(' -> ')} (a cycle between folders)`
    : `${v.from} imports '${v.importText ?? v.to}' (${v.to})`;
  return `error ${v.rule}: ${what}${v.why ? `\n  ${v.why}` : ''}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const violations = await checkDependencies();
  for (const v of violations) console.error(formatViolation(v));
  if (violations.length > 0) {
    console.error(`\n${violations.length} dependency rule violation(s); see docs/architecture.md`);
    process.exit(1);
  }
  console.log('dependency rules: no violation (.dependency-cruiser.cjs)');
}
