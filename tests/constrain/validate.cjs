// validate.cjs — checks JSON texts against a JSON Schema with ajv (an
// independent validator).  usage: node validate.cjs NODE_MODULES SCHEMA_FILE
// stdin: one JSON string per line (the text to check, already parsed by the
// caller); stdout: one line per input, "ok" or "invalid <ajv errors>".
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const Ajv = require(path.join(process.argv[2], 'ajv'));
const schema = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const validate = new Ajv({allErrors: true}).compile(schema);
const rl = readline.createInterface({input: process.stdin});
rl.on('line', (line) => {
  const text = JSON.parse(line);
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    console.log('invalid JSON.parse: ' + e.message);
    return;
  }
  console.log(validate(value) ? 'ok' : 'invalid ' + JSON.stringify(validate.errors));
});
