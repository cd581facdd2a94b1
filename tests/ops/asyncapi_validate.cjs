// Validate AsyncAPI documents with the official parser (@asyncapi/parser, installed by
// scripts/install-deploy-tools into .venv/node; run with NODE_PATH=.venv/node/node_modules).
// Prints one JSON line per file: {"file": ..., "diagnostics": [{severity, code, message,
// path}]}; severity 0 is an error. Exits 2 when it cannot run.
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

async function main() {
  const parser = new Parser();
  for (const file of process.argv.slice(2)) {
    const diagnostics = await parser.validate(fs.readFileSync(file, "utf8"));
    const shown = diagnostics.map((d) => ({
      severity: d.severity,
      code: d.code,
      message: d.message,
      path: d.path,
    }));
    console.log(JSON.stringify({ file, diagnostics: shown }));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
