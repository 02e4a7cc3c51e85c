import { Widget } from '@lumino/widgets';

import { ISciencelabProfile } from '../tokens';

/**
 * The sidebar section that shows the profile this server was spawned with: its resources,
 * image, GPUs, CVMFS repositories and S3 buckets, and any notice from the hub.
 */
export class ProfileSection extends Widget {
  constructor() {
    super();
    this.id = 'sciencelab-profile-section';
    this.title.label = 'Profile';
    this.addClass('sciencelab-ProfileSection');
    const status = document.createElement('p');
    status.className = 'sciencelab-status';
    status.textContent = 'Loading ScienceLab information…';
    this.node.replaceChildren(status);
  }

  /**
   * Show `profile`, or say that the hub did not start this server with one.
   */
  showProfile(profile: ISciencelabProfile | null): void {
    if (!profile) {
      this.node.replaceChildren(
        paragraph(
          'sciencelab-profile',
          'No spawn profile: this server was not started by a ScienceLab hub.'
        )
      );
      return;
    }
    const nodes: HTMLElement[] = [
      paragraph('sciencelab-profile', `Profile: ${profile.display_name}`)
    ];
    for (const notice of profile.notices) {
      const node = paragraph('sciencelab-notice', notice);
      node.setAttribute('role', 'status');
      nodes.push(node);
    }
    if (profile.description) {
      nodes.push(paragraph('sciencelab-profile-description', profile.description));
    }
    const list = document.createElement('dl');
    list.className = 'sciencelab-profile-details';
    for (const [term, value] of profileDetails(profile)) {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.detail = term;
      list.append(dt, dd);
    }
    nodes.push(list);
    this.node.replaceChildren(...nodes);
  }

  /**
   * Show why the server information could not be read, in the server's own words.
   */
  showError(message: string): void {
    const error = paragraph('sciencelab-error', message);
    error.setAttribute('role', 'alert');
    this.node.replaceChildren(error);
  }
}

/**
 * The profile's details as (term, text) pairs, in display order; absent ones are left out.
 */
export function profileDetails(profile: ISciencelabProfile): Array<[string, string]> {
  const details: Array<[string, string]> = [];
  const { cpu_guarantee, cpu_limit, mem_guarantee, mem_limit } = profile.resources;
  const cpu = range(cpu_guarantee, cpu_limit, formatCores);
  if (cpu) {
    details.push(['CPU', cpu]);
  }
  const memory = range(mem_guarantee, mem_limit, formatBytes);
  if (memory) {
    details.push(['Memory', memory]);
  }
  if (profile.image) {
    details.push(['Image', `${profile.image.display_name} (${profile.image.image})`]);
  }
  if (profile.gpu) {
    details.push(['GPU', `${profile.gpu.count} × ${profile.gpu.display_name}`]);
  }
  if (profile.cvmfs.length > 0) {
    details.push(['CVMFS', profile.cvmfs.map(repository => repository.path).join(', ')]);
  }
  if (profile.s3.length > 0) {
    const buckets = profile.s3.map(
      bucket =>
        `${bucket.display_name} (${bucket.endpoint}/${bucket.bucket}${bucket.read_only ? ', read-only' : ''})`
    );
    details.push(['S3', buckets.join(', ')]);
  }
  details.push(['Collaboration', profile.collaborative ? 'on' : 'off']);
  return details;
}

/**
 * `2 GiB` for 2147483648: binary units, as the hub reads `2G`.
 */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

function formatCores(cores: number): string {
  return `${cores} ${cores === 1 ? 'core' : 'cores'}`;
}

/**
 * `1 core guaranteed, up to 2 cores`, one side when only one is declared, null for neither.
 */
function range(
  guarantee: number | null,
  limit: number | null,
  format: (value: number) => string
): string | null {
  if (guarantee !== null && limit !== null) {
    return `${format(guarantee)} guaranteed, up to ${format(limit)}`;
  }
  if (limit !== null) {
    return `up to ${format(limit)}`;
  }
  return guarantee !== null ? `${format(guarantee)} guaranteed` : null;
}

function paragraph(className: string, text: string): HTMLParagraphElement {
  const node = document.createElement('p');
  node.className = className;
  node.textContent = text;
  return node;
}
