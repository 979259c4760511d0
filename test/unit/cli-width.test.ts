import test from 'ava';
import stringWidth from 'string-width';
import terminalWidth from '../../src/cli/terminal-width.js';

test('the CLI bundle\'s terminal width agrees with string-width, which it stands in for, on what help text and tables hold', (t) => {
  const samples = ['', 'dockcni networks create <network>', '  --conf-dir  CNI network configs [env NETCONFPATH; default /etc/cni/net.d]',
    '\u001B[31mred\u001B[39m', '✓ ! ✗ → … ×', 'ünïcödé', '漢字テスト', '한국어', 'ｆｕｌｌ', 'e\u0301', 'a\u200bb', '🚀 ok', 'tab\there'];
  for (const s of samples) t.is(terminalWidth(s), stringWidth(s), JSON.stringify(s));
  t.is(terminalWidth('\u001B[31mred\u001B[39m', { countAnsiEscapeCodes: true }), stringWidth('\u001B[31mred\u001B[39m', { countAnsiEscapeCodes: true }));
});
