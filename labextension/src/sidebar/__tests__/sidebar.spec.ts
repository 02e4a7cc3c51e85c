import { Widget } from '@lumino/widgets';

import { SciencelabRequestError } from '../../request';
import { ISciencelabInfo, ISciencelabProfile } from '../../tokens';
import { describeBatchJob, formatBytes, profileDetails } from '../profile';
import { SciencelabSidebar } from '../sidebar';

const GIB = 1024 ** 3;

const PROFILE: ISciencelabProfile = {
  version: 1,
  slug: 'a100',
  display_name: 'NVIDIA A100 (1 or 2 GPUs)',
  description: 'Training and inference on whole A100 GPUs.',
  image: { name: 'root', display_name: 'ROOT 6.32', image: 'ghcr.io/sciencelab/user-root:2026.11' },
  resources: { cpu_guarantee: 4, cpu_limit: 8, mem_guarantee: 16 * GIB, mem_limit: 32 * GIB },
  gpu: {
    model: 'a100',
    display_name: 'NVIDIA A100 80 GB',
    count: 2,
    resource: 'nvidia.com/gpu',
    devices: []
  },
  cvmfs: [{ name: 'sft.cern.ch', display_name: 'LCG', path: '/cvmfs/sft.cern.ch' }],
  s3: [
    {
      name: 'opendata',
      display_name: 'CMS open data',
      endpoint: 'https://s3.cern.ch',
      bucket: 'cms-opendata',
      read_only: true
    }
  ],
  collaborative: false,
  notices: []
};

const INFO: ISciencelabInfo = {
  version: '0.1.0',
  profile: { ...PROFILE, slug: 'small', display_name: 'Small - 1 CPU, 2 GB' },
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

    expect(panel.sections.map(widget => widget.title.label)).toEqual([
      'Profile',
      'Dask',
      'GPU',
      'Later',
      'Also later'
    ]);
  });

  it('hides and shows a section with its heading', () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve(INFO) });
    const shared = section('Shared with me');
    panel.addSection(shared);
    const frame = shared.parent!.parent!;

    panel.setSectionVisible(shared, false);
    expect(frame.isHidden).toBe(true);
    panel.setSectionVisible(shared, true);
    expect(frame.isHidden).toBe(false);
  });

  it('shows actions under the profile once there is one', async () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve(INFO) });
    await panel.ready;
    const actions = panel.node.querySelector('.sciencelab-ProfileActions') as HTMLElement;
    expect(actions.classList.contains('lm-mod-hidden')).toBe(true);

    const share = new Widget();
    share.node.textContent = 'Share…';
    panel.addProfileAction(share);
    expect(actions.classList.contains('lm-mod-hidden')).toBe(false);
    expect(actions.textContent).toBe('Share…');
    // Under the profile, in the same section.
    expect(text(panel, '.sciencelab-SectionFrame:first-child .sciencelab-profile')).toEqual([
      'Profile: Small - 1 CPU, 2 GB'
    ]);
    expect(actions.closest('.sciencelab-SectionFrame')).toBe(
      panel.node.querySelector('.sciencelab-SectionFrame')
    );
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
      fetchInfo: () => Promise.resolve({ ...INFO, profile: { ...PROFILE, display_name } })
    });
    await panel.ready;

    expect(panel.node.querySelector('img')).toBeNull();
    expect(text(panel, '.sciencelab-profile')).toEqual([`Profile: ${display_name}`]);
  });

  it('folds the settings the spawner did not apply apart, under its marker, with why', async () => {
    const not_applied = {
      settings: ['image', 'size', 'cvmfs', 's3', 'collaborative'],
      marker: 'only on Kubernetes',
      reason: 'This hub runs each server as a local process.'
    };
    panel = new SciencelabSidebar({
      fetchInfo: () => Promise.resolve({ ...INFO, profile: { ...PROFILE, not_applied } })
    });
    await panel.ready;

    const terms = (selector: string): string[] => text(panel, `${selector} dt`);
    expect(terms('.sciencelab-ProfileSection > .sciencelab-profile-details')).toEqual(['GPU']);
    const folded = panel.node.querySelector('details.sciencelab-not-applied') as HTMLDetailsElement;
    expect(folded.open).toBe(false);
    expect(text(panel, '.sciencelab-not-applied summary')).toEqual([
      'Only on Kubernetes: CPU, Memory, Image, CVMFS, S3, Collaboration'
    ]);
    expect(text(panel, '.sciencelab-not-applied-reason')).toEqual([
      'This hub runs each server as a local process.'
    ]);
    expect(terms('.sciencelab-not-applied')).toEqual([
      'CPU',
      'Memory',
      'Image',
      'CVMFS',
      'S3',
      'Collaboration'
    ]);
    expect(text(panel, '[data-detail="Image"]')).toEqual([
      'ROOT 6.32 (ghcr.io/sciencelab/user-root:2026.11)'
    ]);
  });

  it('has no such list when every shown setting applies', async () => {
    const not_applied = { settings: ['image'], marker: 'only on Kubernetes', reason: 'Why.' };
    panel = new SciencelabSidebar({
      fetchInfo: () =>
        Promise.resolve({ ...INFO, profile: { ...PROFILE, image: null, not_applied } })
    });
    await panel.ready;

    expect(panel.node.querySelector('.sciencelab-not-applied')).toBeNull();
    expect(panel.node.querySelectorAll('.sciencelab-profile-details dt')).toHaveLength(6);
  });

  it('shows each section whole in one column, and expands a collapsed one on request', async () => {
    panel = new SciencelabSidebar({ fetchInfo: () => Promise.resolve(INFO) });
    const dask = section('Dask');
    panel.addSection(dask, { rank: 100 });
    Widget.attach(panel, document.body);
    await panel.ready;

    const headers = Array.from(panel.node.querySelectorAll<HTMLElement>('.jp-Collapse-header'));
    expect(headers.map(header => header.textContent)).toEqual(['Profile', 'Dask']);
    expect(headers.map(header => header.getAttribute('aria-expanded'))).toEqual(['true', 'true']);

    headers[1].dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
    expect(headers[1].getAttribute('aria-expanded')).toBe('false');
    expect(dask.isVisible).toBe(false);

    panel.expandSection(dask);
    expect(headers[1].getAttribute('aria-expanded')).toBe('true');
    expect(dask.isVisible).toBe(true);
  });

  it('shows the notices of the hub', async () => {
    const notice =
      "Your last choice of size ('large') is no longer offered; using the default instead.";
    panel = new SciencelabSidebar({
      fetchInfo: () => Promise.resolve({ ...INFO, profile: { ...PROFILE, notices: [notice] } })
    });
    await panel.ready;

    expect(text(panel, '.sciencelab-notice')).toEqual([notice]);
  });
});

describe('profileDetails', () => {
  it('lists resources, image, GPUs, CVMFS and S3 in words', () => {
    expect(profileDetails(PROFILE)).toEqual([
      { term: 'CPU', value: '4 cores guaranteed, up to 8 cores', setting: 'size' },
      { term: 'Memory', value: '16 GiB guaranteed, up to 32 GiB', setting: 'size' },
      {
        term: 'Image',
        value: 'ROOT 6.32 (ghcr.io/sciencelab/user-root:2026.11)',
        setting: 'image'
      },
      { term: 'GPU', value: '2 × NVIDIA A100 80 GB', setting: 'gpu_model' },
      { term: 'CVMFS', value: '/cvmfs/sft.cern.ch', setting: 'cvmfs' },
      {
        term: 'S3',
        value: 'CMS open data (https://s3.cern.ch/cms-opendata, read-only)',
        setting: 's3'
      },
      { term: 'Collaboration', value: 'off', setting: 'collaborative' }
    ]);
  });

  it('leaves out what the profile does not declare', () => {
    const bare: ISciencelabProfile = {
      ...PROFILE,
      image: null,
      gpu: null,
      cvmfs: [],
      s3: [],
      collaborative: true,
      resources: { cpu_guarantee: null, cpu_limit: 1, mem_guarantee: null, mem_limit: null }
    };
    expect(profileDetails(bare)).toEqual([
      { term: 'CPU', value: 'up to 1 core', setting: 'size' },
      { term: 'Collaboration', value: 'on', setting: 'collaborative' }
    ]);
  });

  it('formats bytes in binary units', () => {
    expect(formatBytes(2 * GIB)).toBe('2 GiB');
    expect(formatBytes(1536 * 1024 * 1024)).toBe('1.5 GiB');
    expect(formatBytes(512)).toBe('512 B');
  });
});

describe('describeBatchJob', () => {
  it('says which SLURM job, node and partition the server runs as', () => {
    expect(
      describeBatchJob({ scheduler: 'slurm', job_id: '42', node: 'node-07', partition: 'gpu' })
    ).toBe('Runs as SLURM job 42 on node-07, partition gpu');
    expect(
      describeBatchJob({ scheduler: 'slurm', job_id: '42', node: null, partition: null })
    ).toBe('Runs as SLURM job 42');
  });
});
