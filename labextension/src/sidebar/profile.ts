import { Widget } from '@lumino/widgets';

import { ISciencelabProfile } from '../tokens';

/**
 * The sidebar section that shows the profile this server was spawned with.
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
    const line = document.createElement('p');
    line.className = 'sciencelab-profile';
    line.textContent = profile
      ? `Profile: ${profile.display_name}`
      : 'No spawn profile: this server was not started by a ScienceLab hub.';
    this.node.replaceChildren(line);
  }

  /**
   * Show why the server information could not be read, in the server's own words.
   */
  showError(message: string): void {
    const error = document.createElement('p');
    error.className = 'sciencelab-error';
    error.setAttribute('role', 'alert');
    error.textContent = message;
    this.node.replaceChildren(error);
  }
}
