// Renders an agentload index.html in Debian's Chromium (headless, through playwright-core)
// and checks what a person would: no console errors, no network access (the page must be
// self-contained), every chart has data points, the gates table is there. Saves a
// full-page screenshot next to the report. Exit 0 when all hold, 1 otherwise.
//   node check_report.mjs REPORT_DIR [SCREENSHOT.png]
import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const dir = resolve(process.argv[2] ?? 'test_reports/load');
const html = join(dir, 'index.html');
const shot = resolve(process.argv[3] ?? join(dir, 'index.png'));
if (!existsSync(html)) {
  console.error(`check_report: ${html} does not exist; run agentload first`);
  process.exit(2);
}

const problems = [];
// A fresh profile directory for every run: nothing carried over between runs.
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'agentload-chromium-')), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('request', (r) => { if (!r.url().startsWith('file:')) problems.push(`network request: ${r.url()}`); });
  await page.goto(`file://${html}`, { waitUntil: 'load' });

  const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((svg) => ({
    id: svg.id,
    declared: Number(svg.dataset.points),
    drawn: [...svg.querySelectorAll('polyline.series')]
      .reduce((n, p) => n + p.getAttribute('points').trim().split(/\s+/).filter(Boolean).length, 0),
  })));
  const scenarios = await page.$$eval('section.scenario', (s) => s.length);
  if (scenarios === 0) problems.push('no scenario sections');
  if (charts.length < scenarios * 5) problems.push(`${charts.length} charts for ${scenarios} scenarios; expected 5 each`);
  for (const c of charts) {
    if (!(c.drawn > 0)) problems.push(`chart ${c.id} has no data points`);
    if (c.drawn !== c.declared) problems.push(`chart ${c.id} draws ${c.drawn} points but declares ${c.declared}`);
  }
  const gates = await page.$$eval('section.scenario table tr', (rows) => rows.length);
  if (gates === 0) problems.push('no gate rows');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`check_report: ${scenarios} scenarios, ${charts.length} charts, ` +
              `${charts.reduce((n, c) => n + c.drawn, 0)} points; screenshot ${shot}`);
} finally {
  await browser.close();
}
if (problems.length) {
  for (const p of problems) console.error(`check_report: ${p}`);
  process.exit(1);
}
