import {
  ACCESS_REVOKED_EVENT,
  absoluteUrl,
  collaboratorsFrom,
  describeCode,
  describeExpiry,
  describeUses,
  documentOf,
  isCollaborative,
  revokedMessage,
  sharedServerLabel
} from '../format';
import { NOW, person } from './fixtures';

const MINUTE = 60 * 1000;

describe('isCollaborative', () => {
  it('is true only for the page config option true', () => {
    expect(isCollaborative('true')).toBe(true);
    expect(isCollaborative(true)).toBe(true);
    // PageConfig.getOption gives '' for false and for an absent option.
    expect(isCollaborative('')).toBe(false);
    expect(isCollaborative('false')).toBe(false);
    expect(isCollaborative(undefined)).toBe(false);
  });
});

describe('absoluteUrl', () => {
  it("makes the hub's accept URL absolute on the page's origin", () => {
    expect(absoluteUrl('/hub/accept-share?code=abc', 'https://lab.example.org')).toBe(
      'https://lab.example.org/hub/accept-share?code=abc'
    );
  });
});

describe('describeExpiry and describeUses', () => {
  const at = (ms: number): string => new Date(NOW + ms).toISOString();

  it('counts down in the largest sensible unit, rounding down', () => {
    expect(describeExpiry(at(30 * 1000), NOW)).toBe('expires in less than a minute');
    expect(describeExpiry(at(59 * MINUTE + 59000), NOW)).toBe('expires in 59 min');
    expect(describeExpiry(at(24 * 60 * MINUTE), NOW)).toBe('expires in 24 h');
    expect(describeExpiry(at(7 * 24 * 60 * MINUTE), NOW)).toBe('expires in 7 days');
    expect(describeExpiry(at(0), NOW)).toBe('expired');
    expect(describeExpiry('not a date', NOW)).toBe('expired');
  });

  it('counts uses', () => {
    expect([0, 1, 3].map(describeUses)).toEqual(['not used yet', 'used once', 'used 3 times']);
    expect(
      describeCode(
        { id: 'sc_1', created_at: at(0), expires_at: at(3 * 60 * MINUTE), exchange_count: 2 },
        NOW
      )
    ).toBe('expires in 3 h · used 2 times');
  });
});

describe('sharedServerLabel', () => {
  it('names a named server owner/name and a default server by its owner', () => {
    expect(sharedServerLabel({ owner: 'alice', name: 'together' })).toBe('alice/together');
    expect(sharedServerLabel({ owner: 'alice', name: '' })).toBe('alice (default server)');
  });
});

describe('collaboratorsFrom', () => {
  it('takes the document out of the awareness current field', () => {
    expect(documentOf('notebook:analysis/fit.ipynb')).toBe('analysis/fit.ipynb');
    expect(documentOf('editor:notes:2.txt')).toBe('notes:2.txt');
    expect(documentOf('launcher')).toBeNull();
    expect(documentOf(null)).toBeNull();
  });

  it('lists me first, then the others by name, one entry per user', () => {
    const states = new Map([
      [1, person('carol', 'notebook:b.ipynb')],
      [2, person('bob', null, { display_name: 'Bob Builder' })],
      [3, person('alice', 'notebook:a.ipynb')],
      [4, person('bob', 'notebook:a.ipynb', { display_name: 'Bob Builder' })],
      [5, { current: 'notebook:x.ipynb' }]
    ]);
    expect(collaboratorsFrom(states, 'carol')).toEqual([
      {
        username: 'carol',
        displayName: 'carol',
        color: 'var(--carol)',
        current: 'b.ipynb',
        tabs: 1,
        isMe: true
      },
      {
        username: 'alice',
        displayName: 'alice',
        color: 'var(--alice)',
        current: 'a.ipynb',
        tabs: 1,
        isMe: false
      },
      {
        username: 'bob',
        displayName: 'Bob Builder',
        color: 'var(--bob)',
        // The first of his tabs with a document.
        current: 'a.ipynb',
        tabs: 2,
        isMe: false
      }
    ]);
  });

  it('falls back to a neutral colour and the username', () => {
    const [dave] = collaboratorsFrom(new Map([[1, { user: { username: 'dave' } }]]), null);
    expect(dave).toMatchObject({ displayName: 'dave', color: 'var(--jp-ui-font-color2)' });
  });
});

describe('revokedMessage', () => {
  const event = {
    schema_id: ACCESS_REVOKED_EVENT,
    user: 'bob',
    message: 'You no longer have access.'
  };

  it("gives the server's words to the guest who lost access, and to nobody else", () => {
    expect(revokedMessage(event, 'bob')).toBe('You no longer have access.');
    expect(revokedMessage(event, 'alice')).toBeNull();
    expect(revokedMessage(event, null)).toBeNull();
    expect(
      revokedMessage({ ...event, schema_id: 'https://example.org/other/v1' }, 'bob')
    ).toBeNull();
    expect(revokedMessage({ ...event, message: 3 }, 'bob')).toBeNull();
  });
});
