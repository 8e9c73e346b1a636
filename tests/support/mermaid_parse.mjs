// node mermaid_parse.mjs FILE.md ...: parse every ```mermaid block with mermaid's own
// parser (in a jsdom window); print "<file> #<n>: <type> ok" or the parse error for
// each, and exit 1 if any failed. Run by tests/integration/test_docs_diagrams.py.
import fs from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, "utf8");
  const blocks = [...text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  for (const [i, block] of blocks.entries()) {
    try {
      const result = await mermaid.parse(block);
      console.log(`${file} #${i}: ${result.diagramType} ok`);
    } catch (error) {
      failed += 1;
      console.log(`${file} #${i}: ${String(error.message || error)}`);
    }
  }
}
process.exit(failed ? 1 : 0);
