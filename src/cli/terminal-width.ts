/**
 * How many terminal columns a string takes: ANSI escapes and zero-width characters none, East Asian
 * wide and fullwidth characters and pictographs two, everything else one.
 *
 * `npm run build` bundles the CLI with this module standing in for the `string-width` package that
 * yargs' help layout (cliui, wrap-ansi) uses: that package's Unicode tables and segmenter took most of
 * the CLI's start-up, and yargs measures every help cell on every command it runs (`npm run bench`
 * prints what each module costs to load). Help text is ASCII; this is exact for it, and close for the
 * rest. Its signature is string-width's.
 */
const ANSI = /[\u001B\u009B][[\]()#;?]*(?:\d{1,4}(?:;\d{0,4})*)?[\dA-ORZcf-nqry=><]/g;

const zeroWidth = (cp: number): boolean => cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (cp >= 0x300 && cp <= 0x36f)
  || cp === 0x200b || cp === 0x200c || cp === 0x200d || cp === 0xfeff || (cp >= 0xfe00 && cp <= 0xfe0f);

const wide = (cp: number): boolean => (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f)
  || (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60)
  || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) || (cp >= 0x1f680 && cp <= 0x1f6ff) || (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x1fa70 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd);

export default function terminalWidth(input: string, options: { readonly countAnsiEscapeCodes?: boolean } = {}): number {
  if (typeof input !== 'string' || input.length === 0) return 0;
  const text = options.countAnsiEscapeCodes === true ? input : input.replace(ANSI, '');
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (!zeroWidth(cp)) width += wide(cp) ? 2 : 1;
  }
  return width;
}
