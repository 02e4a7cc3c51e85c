import { Widget } from '@lumino/widgets';

import { SciencelabPanel } from '../panel';
import { SciencelabRequestError } from '../request';
import { ISciencelabInfo } from '../tokens';

const INFO: ISciencelabInfo = {
  version: '0.1.0',
  profile: { slug: 'small', display_name: 'Small - 1 CPU, 2 GB' },
  features: { dask_clusters: true, gpu_monitor: false, session_sharing: false }
};

function text(panel: SciencelabPanel, selector: string): string[] {
  return Array.from(panel.node.querySelectorAll(selector), node => node.textContent ?? '');
}

describe('SciencelabPanel', () => {
  let panel: SciencelabPanel;

  afterEach(() => {
    panel.dispose();
  });

  it('has the id, caption and class the sidebar and browser tests rely on', () => {
    panel = new SciencelabPanel({ fetchInfo: () => Promise.resolve(INFO) });
    Widget.attach(panel, document.body);

    expect(panel.id).toBe('sciencelab-panel');
    expect(panel.title.caption).toBe('ScienceLab');
    expect(document.querySelector('#sciencelab-panel.sciencelab-Panel')).not.toBeNull();
  });

  it('shows the version, the profile and one section per feature', async () => {
    panel = new SciencelabPanel({ fetchInfo: () => Promise.resolve(INFO) });
    await panel.refresh();

    expect(text(panel, '.sciencelab-version')).toEqual(['ScienceLab 0.1.0']);
    expect(text(panel, '.sciencelab-profile')).toEqual(['Profile: Small - 1 CPU, 2 GB']);
    expect(text(panel, '.sciencelab-feature h3')).toEqual([
      'Dask clusters',
      'GPU utilisation',
      'Session sharing'
    ]);
    expect(text(panel, '.sciencelab-feature-state')).toEqual([
      'available',
      'coming in a later release',
      'coming in a later release'
    ]);
  });

  it('says so when the server has no spawn profile', async () => {
    panel = new SciencelabPanel({ fetchInfo: () => Promise.resolve({ ...INFO, profile: null }) });
    await panel.refresh();

    expect(text(panel, '.sciencelab-profile')[0]).toContain('No spawn profile');
  });

  it("shows the server's message when the request fails", async () => {
    const message = 'ScienceLab is misconfigured: unknown profile "huge"';
    panel = new SciencelabPanel({
      fetchInfo: () => Promise.reject(new SciencelabRequestError(message, 500, 'http://x/'))
    });
    await panel.refresh();

    expect(text(panel, '.sciencelab-error')).toEqual([message]);
    expect(panel.node.querySelector('.sciencelab-version')).toBeNull();
  });

  it('renders server values as text, not HTML', async () => {
    const display_name = '<img src=x onerror=alert(1)>';
    panel = new SciencelabPanel({
      fetchInfo: () => Promise.resolve({ ...INFO, profile: { slug: 'x', display_name } })
    });
    await panel.refresh();

    expect(panel.node.querySelector('img')).toBeNull();
    expect(text(panel, '.sciencelab-profile')).toEqual([`Profile: ${display_name}`]);
  });
});
