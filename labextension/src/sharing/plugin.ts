import { IGlobalAwareness } from '@jupyter/collaborative-drive';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { CommandToolbarButton, shareIcon } from '@jupyterlab/ui-components';

import { CommandIDs, ISciencelabSidebar } from '../tokens';
import { CollaboratorsSection } from './collaborators';
import { openShareDialog } from './dialog';
import { isCollaborative, NOT_COLLABORATIVE, revokedMessage } from './format';
import { CollaboratorsModel, IAwarenessLike, SharedWithMeModel, ShareModel } from './model';
import { SharedWithMeSection } from './sharedwithme';

const PLUGIN_ID = '@sciencelab/labextension:sharing';

/**
 * The page config option that says whether this server runs with real-time collaboration; the
 * server extension sets it on servers started from a profile (`sciencelab/collaboration.py`).
 */
const COLLABORATIVE_OPTION = 'sciencelabCollaborative';

/**
 * Ranks in the ScienceLab sidebar: Collaborators right under the profile (0), Shared with me
 * above the session (50).
 */
const COLLABORATORS_RANK = 20;
const SHARED_WITH_ME_RANK = 40;

/**
 * Sharing this server: the Share command (palette, the notebook toolbar through
 * `schema/sharing.json`, a button under the profile), the Collaborators section (who is connected,
 * from the global awareness of jupyter-collaboration) and the Shared with me section.
 */
export const sharingPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Share this server with other users and groups, see who is connected, and reach servers shared with you.',
  autoStart: true,
  requires: [ISciencelabSidebar],
  optional: [ICommandPalette, IGlobalAwareness],
  activate: (
    app: JupyterFrontEnd,
    sidebar: ISciencelabSidebar,
    palette: ICommandPalette | null,
    awareness: IAwarenessLike | null
  ): void => {
    const collaborative = isCollaborative(PageConfig.getOption(COLLABORATIVE_OPTION));
    const { commands } = app;
    commands.addCommand(CommandIDs.share, {
      label: 'Share…',
      caption: collaborative
        ? 'Let other users of this hub use this server and edit its notebooks with you'
        : NOT_COLLABORATIVE,
      icon: shareIcon,
      // Run anyway (from code), the dialog shows the server's reason.
      isEnabled: () => collaborative,
      execute: () => openShareDialog(new ShareModel())
    });
    palette?.addItem({ command: CommandIDs.share, category: 'ScienceLab' });
    sidebar.addProfileAction(
      new CommandToolbarButton({ commands, id: CommandIDs.share, label: 'Share…' })
    );

    if (collaborative && awareness) {
      const { user } = app.serviceManager;
      const model = new CollaboratorsModel(awareness, () => user.identity?.username ?? null);
      void user.ready.then(() => model.update());
      sidebar.addSection(new CollaboratorsSection(model), { rank: COLLABORATORS_RANK });
    }

    // A guest who loses access hears it here first: JupyterLab says nothing when a kernel's
    // socket closes, and the document rooms' own dialog covers only open notebooks.
    app.serviceManager.events.stream.connect((_, emission) => {
      const message = revokedMessage(emission, app.serviceManager.user.identity?.username ?? null);
      if (message !== null) {
        void showDialog({
          title: 'Access revoked',
          body: message,
          buttons: [Dialog.okButton({ label: 'OK' })]
        });
      }
    });

    const shared = new SharedWithMeModel();
    const section = new SharedWithMeSection(shared);
    sidebar.addSection(section, { rank: SHARED_WITH_ME_RANK });
    const showWhenAny = (): void => sidebar.setSectionVisible(section, shared.servers.length > 0);
    showWhenAny();
    shared.changed.connect(showWhenAny);
    void shared.start();
  }
};
