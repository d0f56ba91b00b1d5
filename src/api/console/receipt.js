// The "check my receipt" box: for anyone, signed in or not. The checks are the fairness library's
// own (/console/fairness.js is src/domain/fairness/verify.ts bundled for the browser), so the page
// and `npm run verify` give one verdict; this file only fetches what they read and shows it.
const el = (sel) => document.querySelector(sel);

async function json(url) {
  const r = await fetch(url, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${url} answered HTTP ${r.status}`);
  return r.json();
}

function verdict(kind, message) {
  const v = el('#receipt-verdict');
  v.dataset.verdict = kind;
  v.textContent = message;
}

async function check() {
  el('#receipt-checks').replaceChildren();
  verdict('', 'checking…');
  let file;
  try {
    file = JSON.parse(el('#receipt').value);
  } catch (err) {
    return verdict('ERROR', `not JSON: ${err.message}`);
  }
  try {
    const { entryOfFile, verifyReceipt } = await import('/console/fairness.js');
    const entry = entryOfFile(file);
    if (!entry) return verdict('ERROR', 'no entry here: paste myEntry { campaignId userId ticket position status receipt { … } }');
    // what the campaign published and the keys that sign its heads: public, no token
    const [published, doc] = await Promise.all([
      json(`/fairness/${encodeURIComponent(entry.campaignId)}`),
      json('/.well-known/firstcome-fairness.json'),
    ]);
    const keys = new Map((doc.keys ?? []).map((k) => [k.keyId, k.publicKey]));
    const result = verifyReceipt(entry, published, keys);
    el('#receipt-checks').replaceChildren(
      ...result.checks.map((c) => {
        const li = document.createElement('li');
        li.dataset.check = c.name;
        li.dataset.ok = String(c.ok);
        const name = document.createElement('b');
        name.textContent = `${c.ok ? '✓ passed' : '✗ failed'} ${c.name}`;
        li.append(name, `: ${c.detail}`);
        return li;
      }),
    );
    const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
    if (result.ok) verdict('PASS', `PASS: the receipt holds (${entry.campaignId}, position ${entry.position})`);
    else verdict('FAIL', `FAIL: ${failed.join(', ')}`);
  } catch (err) {
    verdict('ERROR', `could not check: ${err.message}`);
  }
}

el('#receipt-check').addEventListener('click', check);
