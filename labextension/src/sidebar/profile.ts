import { Widget } from '@lumino/widgets';

import { IBatchJob, ISciencelabProfile } from '../tokens';

/**
 * The sidebar section that shows the profile this server was spawned with: its resources,
 * image, GPUs, CVMFS repositories and S3 buckets, and any notice from the hub. Settings the
 * spawner did not apply (a local process has no image or mounts) are folded apart under the
 * hub's marker ("Only on Kubernetes: Image, CVMFS"), with the hub's reason.
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
   * Show `profile` and the batch job the server runs as (`job`, if any), or say that the hub did
   * not start this server with a profile.
   */
  showProfile(profile: ISciencelabProfile | null, job: IBatchJob | null = null): void {
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
    if (job) {
      nodes.push(paragraph('sciencelab-batch-job', describeBatchJob(job)));
    }
    for (const notice of profile.notices) {
      const node = paragraph('sciencelab-notice', notice);
      node.setAttribute('role', 'status');
      nodes.push(node);
    }
    if (profile.description) {
      nodes.push(paragraph('sciencelab-profile-description', profile.description));
    }
    const notApplied = profile.not_applied ?? null;
    const details = profileDetails(profile);
    const applied = details.filter(detail => !notApplied?.settings.includes(detail.setting));
    const unapplied = details.filter(detail => notApplied?.settings.includes(detail.setting));
    nodes.push(detailList(applied));
    if (notApplied && unapplied.length > 0) {
      // What this server does not get: one line under the hub's marker, the values and the
      // hub's reason a click away, so the profile does not push the Dask clusters out of view.
      const group = document.createElement('details');
      group.className = 'sciencelab-not-applied';
      const summary = document.createElement('summary');
      const marker = notApplied.marker;
      summary.textContent = `${marker.charAt(0).toUpperCase()}${marker.slice(1)}: ${unapplied
        .map(detail => detail.term)
        .join(', ')}`;
      group.append(
        summary,
        paragraph('sciencelab-not-applied-reason', notApplied.reason),
        detailList(unapplied)
      );
      nodes.push(group);
    }
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
 * One line of the profile section.
 */
export interface IProfileDetail {
  term: string;
  value: string;
  /**
   * The profile option it comes from, as `not_applied` names it: `size`, `image`, `gpu_model`...
   */
  setting: string;
}

/**
 * The profile's details in display order; absent ones are left out.
 */
export function profileDetails(profile: ISciencelabProfile): IProfileDetail[] {
  const details: IProfileDetail[] = [];
  const { cpu_guarantee, cpu_limit, mem_guarantee, mem_limit } = profile.resources;
  const cpu = range(cpu_guarantee, cpu_limit, formatCores);
  if (cpu) {
    details.push({ term: 'CPU', value: cpu, setting: 'size' });
  }
  const memory = range(mem_guarantee, mem_limit, formatBytes);
  if (memory) {
    details.push({ term: 'Memory', value: memory, setting: 'size' });
  }
  if (profile.image) {
    const value = `${profile.image.display_name} (${profile.image.image})`;
    details.push({ term: 'Image', value, setting: 'image' });
  }
  if (profile.gpu) {
    const value = `${profile.gpu.count} × ${profile.gpu.display_name}`;
    details.push({ term: 'GPU', value, setting: 'gpu_model' });
  }
  if (profile.cvmfs.length > 0) {
    const value = profile.cvmfs.map(repository => repository.path).join(', ');
    details.push({ term: 'CVMFS', value, setting: 'cvmfs' });
  }
  if (profile.s3.length > 0) {
    const buckets = profile.s3.map(
      bucket =>
        `${bucket.display_name} (${bucket.endpoint}/${bucket.bucket}${bucket.read_only ? ', read-only' : ''})`
    );
    details.push({ term: 'S3', value: buckets.join(', '), setting: 's3' });
  }
  details.push({
    term: 'Collaboration',
    value: profile.collaborative ? 'on' : 'off',
    setting: 'collaborative'
  });
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

/**
 * `details` as a term/value list; each value carries its term in `data-detail`.
 */
function detailList(details: IProfileDetail[]): HTMLDListElement {
  const list = document.createElement('dl');
  list.className = 'sciencelab-profile-details';
  for (const { term, value } of details) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.detail = term;
    list.append(dt, dd);
  }
  return list;
}

function paragraph(className: string, text: string): HTMLParagraphElement {
  const node = document.createElement('p');
  node.className = className;
  node.textContent = text;
  return node;
}

/**
 * `Runs as SLURM job 42 on node-07, partition gpu`: where a batch-job server runs.
 */
export function describeBatchJob(job: IBatchJob): string {
  const node = job.node ? ` on ${job.node}` : '';
  const partition = job.partition ? `, partition ${job.partition}` : '';
  return `Runs as SLURM job ${job.job_id}${node}${partition}`;
}
