import { RJSFSchema } from '@rjsf/utils';

import { numberFieldErrors, numberFieldMessage, wholeNumber } from '../validator';

const SCHEMA: RJSFSchema = {
  type: 'object',
  properties: {
    workers: { type: 'integer', description: '0 to 4 workers', minimum: 0, maximum: 4 },
    memory: { type: 'number', description: '0.5 to 8 GiB', minimum: 0.5, maximum: 8 },
    adaptive: { type: 'boolean' },
    environment: { type: 'string' }
  }
};

describe('numberFieldErrors', () => {
  it('names each number field left blank, mistyped or fractional where whole', () => {
    expect(numberFieldErrors(SCHEMA, { workers: 1.5, adaptive: true })).toEqual({
      workers: { __errors: ['workers: enter a whole number; choose 0 to 4 workers'] },
      memory: { __errors: ['memory: enter a number; choose 0.5 to 8 GiB'] }
    });
  });

  it('lets numbers through, whatever their bounds: the server checks those', () => {
    expect(numberFieldErrors(SCHEMA, { workers: 9, memory: 2.5 })).toEqual({});
  });
});

describe('wholeNumber', () => {
  it('reads what a number input holds, blank and mistyped as null, not 0', () => {
    expect(['3', ' 12 ', '-1', '', '1e3', '2.5', 'abc'].map(wholeNumber)).toEqual([
      3,
      12,
      -1,
      null,
      null,
      null,
      null
    ]);
  });

  it('words the problem as the server does', () => {
    expect(numberFieldMessage('workers', true)).toBe('workers: enter a whole number');
  });
});
