import { Widget } from '@lumino/widgets';

import { requestAPI } from './request';
import { ISciencelabFeatures, ISciencelabInfo } from './tokens';

/**
 * The placeholder sections, in display order, and the feature flag that switches each on.
 */
const FEATURE_SECTIONS: ReadonlyArray<{
  feature: keyof ISciencelabFeatures;
  title: string;
}> = [
  { feature: 'dask_clusters', title: 'Dask clusters' },
  { feature: 'gpu_monitor', title: 'GPU utilisation' },
  { feature: 'session_sharing', title: 'Session sharing' }
];

/**
 * The ScienceLab panel of the left sidebar: version, spawn profile and feature sections.
 *
 * The content is built with `textContent` only, so server values are never parsed as HTML.
 */
export class SciencelabPanel extends Widget {
  /**
   * @param options.fetchInfo - Where the panel gets its data; `GET sciencelab/api/info` by
   *   default. Tests pass a stub.
   */
  constructor(options: SciencelabPanel.IOptions = {}) {
    super();
    this._fetchInfo = options.fetchInfo ?? (() => requestAPI<ISciencelabInfo>('info'));
    this.id = 'sciencelab-panel';
    this.title.caption = 'ScienceLab';
    this.addClass('sciencelab-Panel');
    this._showStatus('Loading ScienceLab information…');
  }

  /**
   * Fetch the server information again and redraw the panel.
   *
   * Never rejects: a failure is shown in the panel with the server's message.
   */
  async refresh(): Promise<void> {
    try {
      this._render(await this._fetchInfo());
    } catch (error) {
      this._showError(error instanceof Error ? error.message : String(error));
    }
  }

  private _render(info: ISciencelabInfo): void {
    const version = document.createElement('h2');
    version.className = 'sciencelab-version';
    version.textContent = `ScienceLab ${info.version}`;

    const profile = document.createElement('p');
    profile.className = 'sciencelab-profile';
    profile.textContent = info.profile
      ? `Profile: ${info.profile.display_name}`
      : 'No spawn profile: this server was not started by a ScienceLab hub.';

    const sections = FEATURE_SECTIONS.map(({ feature, title }) => {
      const enabled = info.features[feature] === true;
      const section = document.createElement('section');
      section.className = 'sciencelab-feature';
      section.dataset.feature = feature;
      section.classList.toggle('sciencelab-mod-available', enabled);

      const heading = document.createElement('h3');
      heading.textContent = title;
      const state = document.createElement('p');
      state.className = 'sciencelab-feature-state';
      state.textContent = enabled ? 'available' : 'coming in a later release';

      section.append(heading, state);
      return section;
    });

    this.node.replaceChildren(version, profile, ...sections);
  }

  private _showStatus(text: string): void {
    const status = document.createElement('p');
    status.className = 'sciencelab-status';
    status.textContent = text;
    this.node.replaceChildren(status);
  }

  private _showError(message: string): void {
    const title = document.createElement('h2');
    title.textContent = 'ScienceLab';
    const error = document.createElement('p');
    error.className = 'sciencelab-error';
    error.setAttribute('role', 'alert');
    error.textContent = message;
    this.node.replaceChildren(title, error);
  }

  private readonly _fetchInfo: () => Promise<ISciencelabInfo>;
}

/**
 * The namespace for `SciencelabPanel` statics.
 */
export namespace SciencelabPanel {
  /**
   * Options for the panel.
   */
  export interface IOptions {
    fetchInfo?: () => Promise<ISciencelabInfo>;
  }
}
