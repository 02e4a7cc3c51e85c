import { Widget } from '@lumino/widgets';

import { SciencelabRequestError } from '../../request';
import { ISciencelabInfo } from '../../tokens';
import { SciencelabSidebar } from '../sidebar';

const INFO: ISciencelabInfo = {
  version: '0.1.0',
  profile: { slug: 'small', display_name: 'Small - 1 CPU, 2 GB' },
  features: { dask_clusters: true, gpu_monitor: false, session_sharing: false }
};

function text(panel: Widget, selector: string): string[] {
  return Array.from(panel.node.querySelectorAll(selector), node => node.textContent ?? '');
}

function section(label: string): Widget {
  const widget = new Widget();
  widget.title.label = label;
  return widget;
}

describe('SciencelabSidebar', () => {
  let panel: SciencelabSidebar;

  afterEach(() => {
    panel.dispose();
  });

  it('has the id, caption and class the sidebar and browser tests rely on', () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve(INFO) });
    Widget.attach(panel, document.body);

    expect(panel.id).toBe('sciencelab-panel');
    expect(panel.title.caption).toBe('ScienceLab');
    expect(document.querySelector('#sciencelab-panel.sciencelab-Panel')).not.toBeNull();
  });

  it('shows the version and the profile', async () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve(INFO) });
    await panel.ready;

    expect(text(panel, '.sciencelab-version')).toEqual(['ScienceLab 0.1.0']);
    expect(text(panel, '.sciencelab-profile')).toEqual(['Profile: Small - 1 CPU, 2 GB']);
    expect(await panel.info).toBe(INFO);
  });

  it('orders sections by rank, equal ranks in the order they came', () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve(INFO) });
    panel.addSection(section('GPU'), { rank: 200 });
    panel.addSection(section('Later'));
    panel.addSection(section('Dask'), { rank: 100 });
    panel.addSection(section('Also later'));

    expect(panel.widgets.map(widget => widget.title.label)).toEqual([
      'Profile',
      'Dask',
      'GPU',
      'Later',
      'Also later'
    ]);
  });

  it('says so when the server has no spawn profile', async () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve({ ...INFO, profile: null }) });
    await panel.ready;

    expect(text(panel, '.sciencelab-profile')[0]).toContain('No spawn profile');
  });

  it("shows the server's message when the request fails", async () => {
    const message = 'ScienceLab is misconfigured: unknown profile "huge"';
    const failure = new SciencelabRequestError(message, 500, 'http://x/');
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.reject(failure) });
    await panel.ready;

    expect(text(panel, '.sciencelab-error')).toEqual([message]);
    expect(text(panel, '.sciencelab-version')).toEqual(['ScienceLab']);
    await expect(panel.info).rejects.toBe(failure);
  });

  it('renders server values as text, not HTML', async () => {
    const display_name = '<img src=x onerror=alert(1)>';
    panel = new SciencelabSidebar({
      fetchInfo: () => Promise.resolve({ ...INFO, profile: { slug: 'x', display_name } })
    });
    await panel.ready;

    expect(panel.node.querySelector('img')).toBeNull();
    expect(text(panel, '.sciencelab-profile')).toEqual([`Profile: ${display_name}`]);
  });
});
