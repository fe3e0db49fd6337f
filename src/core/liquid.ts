// Liquid for templates that organisations write (warmup, helpdesk replies, automation, SMS): only the
// variables given (own properties, no prototype walks), no unknown filters, no file tags (include, render
// and layout would read the server's disk, relative to its working directory), and limits on parse size,
// render time and memory, so a template can neither read files nor hold a worker.
import { Liquid, Tag } from 'liquidjs';

const noFiles = {
  exists: async () => false,
  existsSync: () => false,
  readFile: async () => {
    throw new Error('templates cannot read files');
  },
  readFileSync: () => {
    throw new Error('templates cannot read files');
  },
  resolve: (_root: string, file: string) => file,
  dirname: () => '',
  sep: '/',
};

export interface SafeLiquidLimits {
  /** Parsed templates kept. */
  cache: number;
  /** Milliseconds one render may take. */
  renderLimit: number;
  /** Bytes of strings and arrays one render may build. */
  memoryLimit: number;
}

export function safeLiquid(limits: SafeLiquidLimits): Liquid {
  const liquid = new Liquid({
    fs: noFiles as never,
    strictFilters: true,
    ownPropertyOnly: true,
    parseLimit: 100_000,
    ...limits,
  });
  for (const name of ['include', 'render', 'layout']) {
    liquid.registerTag(
      name,
      class extends Tag {
        constructor(...args: ConstructorParameters<typeof Tag>) {
          super(...args);
          throw new Error(`{% ${name} %} is not available in templates`);
        }
        render(): void {}
      },
    );
  }
  return liquid;
}
