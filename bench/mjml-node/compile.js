// In-process reference: compile every .mjml file given on the command line with
// mjml 4 (Node), after one warm-up, and print the total milliseconds as JSON.
const fs = require("fs");
const mjml2html = require("mjml");

const files = process.argv.slice(2);
const sources = files.map((f) => fs.readFileSync(f, "utf8"));
mjml2html(sources[0], { validationLevel: "soft" }); // warm-up: module loading, JIT
const start = process.hrtime.bigint();
let bytes = 0;
for (const src of sources) {
  bytes += mjml2html(src, { validationLevel: "soft" }).html.length;
}
const ms = Number(process.hrtime.bigint() - start) / 1e6;
console.log(JSON.stringify({ files: sources.length, ms, bytes }));
