// The documentation against the binary and against itself:
// docs/configuration.md documents exactly the options `switchboard --help`
// prints, each with its environment variable and the default --help states,
// and the ranges it gives are the ones the binary enforces; and no relative
// link in the repository's documentation points to a missing file or anchor.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runServer } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const CONFIG_DOC = path.join(ROOT, 'docs/configuration.md');

// SWITCHBOARD_ and the long name in capitals, dashes as underscores.
function envName(option) {
  return `SWITCHBOARD_${option.slice(2).toUpperCase().replaceAll('-', '_')}`;
}

// `--help` as {option: {short, text}}: an entry starts with a line whose
// first word is an option ("  -p, --port N ..." or "      --max-message ...")
// and goes on over the lines indented deeper than it.
export function parseHelp(help) {
  const options = new Map();
  let current = null;
  for (const line of help.split('\n')) {
    const m = /^ {2,}(?:(-[a-zA-Z]), )?(--[a-z][a-z-]*)\b(.*)$/.exec(line);
    if (m && !/^ {8,}/.test(line)) {
      current = { short: m[1] || null, text: m[3] };
      options.set(m[2], current);
    } else if (current && /^ {8,}\S/.test(line)) {
      current.text += ` ${line.trim()}`;
    } else {
      current = null;
    }
  }
  return options;
}

// The default an entry of --help states, or null: what follows "default"
// up to the next ")", "," or ";" ("(default 8080)", "(default: any)").
export function helpDefault(text) {
  const m = /\bdefault:?\s+([^),;]+)/.exec(text);
  return m ? m[1].trim() : null;
}

// The table of docs/configuration.md, "## All options": one row per option,
// {option: {short, env, def, values}}.
export function parseOptionTable(markdown) {
  const section = /^## All options\n([\s\S]*?)(?=^## )/m.exec(markdown);
  assert.ok(section, 'docs/configuration.md has a "## All options" section');
  const rows = new Map();
  for (const line of section[1].split('\n')) {
    if (!line.startsWith('| `--')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    assert.equal(cells.length, 4, `a row of four cells: ${line}`);
    const opt = /^`(--[a-z][a-z-]*)[^`]*`(?: \(`(-[a-zA-Z])`\))?$/.exec(cells[0]);
    assert.ok(opt, `the first cell names one option: ${line}`);
    assert.ok(!rows.has(opt[1]), `${opt[1]} has one row`);
    rows.set(opt[1], { short: opt[2] || null, env: cells[1].replaceAll('`', ''), def: cells[2], values: cells[3] });
  }
  return rows;
}

// Lower case, without backticks or repeated spaces: for comparing a default.
function plain(s) {
  return s.replaceAll('`', '').replace(/\s+/g, ' ').trim().toLowerCase();
}

describe('docs/configuration.md and --help', () => {
  const doc = readFileSync(CONFIG_DOC, 'utf8');
  let help;
  let helpOptions;
  const rows = parseOptionTable(doc);

  test('--help prints the options (the parser below finds them)', async () => {
    const r = await runServer(['--help']);
    assert.equal(r.code, 0, r.stderr);
    help = r.stdout;
    helpOptions = parseHelp(help);
    // Not vacuous: the options every build has are there, with their forms.
    for (const o of ['--port', '--bind', '--workers', '--max-message', '--allowed-origin', '--help', '--version']) {
      assert.ok(helpOptions.has(o), `--help prints ${o}:\n${help}`);
    }
    assert.equal(helpOptions.get('--port').short, '-p');
    assert.equal(helpDefault(helpOptions.get('--port').text), '8080');
    assert.ok(helpOptions.size >= 20, `found ${helpOptions.size} options in --help`);
  });

  test('every option --help prints has a row with its variable and a section of its own', () => {
    assert.ok(helpOptions, 'the first test read --help');
    for (const [option, { short }] of helpOptions) {
      if (option === '--help' || option === '--version') {
        // No value and no variable: named in the text.
        assert.ok(doc.includes(`\`${option}\``), `docs/configuration.md mentions \`${option}\``);
        assert.ok(!rows.has(option), `${option} has no row (it has no variable)`);
        continue;
      }
      const row = rows.get(option);
      assert.ok(row, `docs/configuration.md has no row for ${option}, which --help prints`);
      assert.equal(row.env, envName(option), `the variable of ${option}`);
      assert.equal(row.short, short, `the short form of ${option}`);
      const heading = new RegExp(`^### .*\`${option}\`(,|$)`, 'm');
      assert.match(doc, heading, `docs/configuration.md has a "### \`${option}\`" section`);
    }
  });

  test('every option and variable the page names exists in --help', () => {
    assert.ok(helpOptions, 'the first test read --help');
    for (const option of rows.keys()) {
      assert.ok(helpOptions.has(option), `docs/configuration.md documents ${option}, which --help does not print`);
    }
    const known = new Set([...helpOptions.keys()].map(envName));
    // Anywhere on the page: options in backticks and SWITCHBOARD_ variables,
    // except the misspelt name quoted in the server's own warning.
    for (const m of doc.matchAll(/`(--[a-z][a-z-]*)/g)) {
      assert.ok(helpOptions.has(m[1]), `docs/configuration.md names ${m[1]}, which --help does not print`);
    }
    for (const m of doc.matchAll(/(unknown environment variable )?\b(SWITCHBOARD_[A-Z0-9_]+)/g)) {
      if (m[1]) continue;
      assert.ok(known.has(m[2]), `docs/configuration.md names ${m[2]}, which is no option's variable`);
    }
  });

  test('the defaults agree where --help states one', () => {
    assert.ok(helpOptions, 'the first test read --help');
    let compared = 0;
    for (const [option, { text }] of helpOptions) {
      const def = helpDefault(text);
      const row = rows.get(option);
      if (def === null || !row) continue;
      compared += 1;
      // The row starts with it, as a whole word: `30` does not pass for `300`.
      const d = plain(def);
      const r = plain(row.def);
      assert.ok(r.startsWith(d) && !/\w/.test(r.charAt(d.length)),
        `${option}: --help says the default is "${def}", docs/configuration.md says "${row.def}"`);
    }
    assert.ok(compared >= 15, `only ${compared} defaults compared`);
  });

  test('the numeric ranges are the ones the binary enforces', async () => {
    let checked = 0;
    for (const [option, row] of rows) {
      const range = /^(\d+) to (\d+)\b/.exec(row.values);
      if (!range) continue;
      const r = await runServer([option, 'x']);
      assert.equal(r.code, 2, `${option} x: ${r.stderr}`);
      const said = / from (\d+) to (\d+)\)/.exec(r.stderr);
      assert.ok(said, `${option} x names its range: ${r.stderr}`);
      assert.deepEqual([said[1], said[2]], [range[1], range[2]], `the range of ${option}`);
      checked += 1;
    }
    assert.ok(checked >= 12, `only ${checked} ranges checked`);
  });
});

// ------------------------------------------------------------ links

// The documentation a reader finds in the repository.
const DOCS = ['README.md', 'bench/README.md', 'tests/README.md', 'tests/blackbox/README.md', 'tests/fuzz/README.md',
  ...['architecture.md', 'client.md', 'cluster-data.md', 'configuration.md', 'operations.md', 'protocol.md'].map((f) => `docs/${f}`)];

// GitHub's anchor for a heading: lower case, punctuation other than "-" and
// "_" dropped, spaces as "-"; a repeated heading gets "-1", "-2", ...
export function anchors(markdown) {
  const seen = new Map();
  const out = new Set();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^(```|~~~)/.test(line)) fence = !fence;
    const m = !fence && /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = m[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) || 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

// [text](target) links outside code, with the line they are on.
function links(markdown) {
  const out = [];
  let fence = false;
  markdown.split('\n').forEach((line, i) => {
    if (/^(```|~~~)/.test(line)) fence = !fence;
    if (fence || /^ {4}/.test(line)) return;
    const text = line.replace(/`[^`]*`/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) out.push({ target: m[1], line: i + 1 });
  });
  return out;
}

describe('links in the documentation', () => {
  test('the anchor rule matches GitHub\'s for the headings used here', () => {
    const a = anchors('# One\n## `--port`\n### `--tls-cert`, `--tls-key`\n## HTTP endpoints and metrics\n## One\n```\n# not\n```\n');
    assert.deepEqual([...a], ['one', '--port', '--tls-cert---tls-key', 'http-endpoints-and-metrics', 'one-1']);
  });

  for (const file of DOCS) {
    test(`${file}: every relative link points to a file, and an anchor to a heading`, () => {
      const full = path.join(ROOT, file);
      assert.ok(existsSync(full), `${file} exists`);
      const text = readFileSync(full, 'utf8');
      const bad = [];
      for (const { target, line } of links(text)) {
        if (/^[a-z]+:/i.test(target)) continue; // http:, https:, mailto:
        const [p, anchor] = target.split('#');
        const dest = p ? path.resolve(path.dirname(full), decodeURIComponent(p)) : full;
        if (!dest.startsWith(ROOT + path.sep) && dest !== ROOT) {
          bad.push(`${file}:${line}: ${target} leaves the repository`);
          continue;
        }
        if (!existsSync(dest)) {
          bad.push(`${file}:${line}: ${target}: no such file`);
          continue;
        }
        if (anchor !== undefined) {
          if (statSync(dest).isDirectory() || !dest.endsWith('.md')) {
            bad.push(`${file}:${line}: ${target}: an anchor into something that is not markdown`);
          } else if (!anchors(readFileSync(dest, 'utf8')).has(anchor)) {
            bad.push(`${file}:${line}: ${target}: no heading with that anchor in ${path.relative(ROOT, dest)}`);
          }
        }
      }
      assert.deepEqual(bad, []);
    });
  }
});
