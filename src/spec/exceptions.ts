/**
 * Mnemonics of the architecture's exception and interrupt vectors 0-21 (SDM 3A §6.3.1,
 * Table 6-1), for reports. Reserved vectors show their number.
 */
export const EXCEPTION_NAMES: readonly string[] = [
  '#DE',
  '#DB',
  'NMI',
  '#BP',
  '#OF',
  '#BR',
  '#UD',
  '#NM',
  '#DF',
  '#09',
  '#TS',
  '#NP',
  '#SS',
  '#GP',
  '#PF',
  '#15',
  '#MF',
  '#AC',
  '#MC',
  '#XM',
  '#VE',
  '#CP',
];
