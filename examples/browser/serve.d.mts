// Types of serve.mjs, for the TypeScript tests that import it.

/** The folder of onnxruntime-web's browser builds (ort*.mjs and ort-wasm-*.wasm). */
export function ortWebDist(): string;

/**
 * Serves files on 127.0.0.1 over HTTP.
 * @param mounts - URL path → file, or URL prefix ending in '/' → folder
 * @param opts.port - 0 (the default) picks a free port
 */
export function serve(
  mounts: Record<string, string>,
  opts?: { port?: number },
): Promise<{ url: string; close: () => Promise<void> }>;
