/**
 * The Dask clusters plugin: its sidebar section, its commands and its settings.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  ISessionContext,
  MainAreaWidget,
  showDialog
} from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ReadonlyJSONObject, ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { followSettings } from '../settings';
import { CommandIDs, ISciencelabSidebar } from '../tokens';
import { ICluster } from './api';
import {
  connectCodeGoesBelow,
  DASHBOARD_PLOTS,
  dashboardPlotUrl,
  DaskClustersModel
} from './model';
import { DaskSection } from './panel';
import { makeDashboardWidget, makeLogsWidget } from './widgets';

const PLUGIN_ID = '@sciencelab/labextension:dask';

/**
 * The Dask section's rank in the sidebar (the profile has 0, the GPU monitor 200).
 */
const SECTION_RANK = 100;

/**
 * The settings of `schema/dask.json`, with its defaults when the registry cannot be read.
 */
interface IDaskSettings {
  defaultTemplate: string;
  confirmShutdown: boolean;
  updateInterval: number;
}

const DEFAULT_SETTINGS: IDaskSettings = {
  defaultTemplate: '',
  confirmShutdown: true,
  updateInterval: 1
};

export const daskPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Dask clusters from the notebook: the ScienceLab panel section, its commands and settings.',
  autoStart: true,
  requires: [ISciencelabSidebar, ILabShell],
  optional: [ISettingRegistry, ICommandPalette],
  activate: async (
    app: JupyterFrontEnd,
    sidebar: ISciencelabSidebar,
    labShell: ILabShell,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null
  ): Promise<void> => {
    try {
      if (!(await sidebar.info).features.dask_clusters) {
        return;
      }
    } catch {
      return; // the sidebar shows why the server extension cannot be reached
    }
    const settings = { ...DEFAULT_SETTINGS };
    const model = new DaskClustersModel();
    const activeKernel = (): string | null =>
      activeSession(labShell)?.session?.kernel?.name ?? null;
    const activeKernelChanged = new Signal<ILabShell, string | null>(labShell);
    watchActiveKernel(labShell, () => activeKernelChanged.emit(activeKernel()));
    const section = new DaskSection({
      model,
      commands: app.commands,
      defaultTemplate: () => settings.defaultTemplate,
      activeKernel,
      activeKernelChanged
    });
    sidebar.addSection(section, { rank: SECTION_RANK });

    await followSettings(settingRegistry, PLUGIN_ID, loaded => {
      Object.assign(settings, loaded.composite as unknown as IDaskSettings);
      model.setUpdateInterval(settings.updateInterval);
    });
    void model.start(settings.updateInterval);

    addCommands(app, labShell, model, section, sidebar, settings);
    if (palette) {
      for (const command of [CommandIDs.createCluster]) {
        palette.addItem({ command, category: 'Dask' });
      }
    }
  }
};

/**
 * The cluster commands; every one but `createCluster` takes the cluster's `id`.
 */
function addCommands(
  app: JupyterFrontEnd,
  labShell: ILabShell,
  model: DaskClustersModel,
  section: DaskSection,
  sidebar: ISciencelabSidebar,
  settings: IDaskSettings
): void {
  const { commands } = app;
  const clusterOf = (args: ReadonlyPartialJSONObject): ICluster => {
    const cluster = model.cluster(String(args.id));
    if (!cluster) {
      throw new Error(`No Dask cluster ${String(args.id)}: it was shut down meanwhile.`);
    }
    return cluster;
  };
  const dashboards = new Map<string, MainAreaWidget<Widget>>();

  commands.addCommand(CommandIDs.createCluster, {
    label: 'Create Dask Cluster',
    caption:
      'Create a Dask cluster from a template; without arguments, open the form in the ScienceLab panel',
    execute: args => {
      if (typeof args.template === 'string') {
        return model.create(args.template, (args.options ?? {}) as ReadonlyJSONObject);
      }
      section.openForm();
      void commands.execute(CommandIDs.openPanel);
      sidebar.expandSection(section);
      return null;
    }
  });

  commands.addCommand(CommandIDs.scaleCluster, {
    label: 'Scale Dask Cluster',
    caption: 'Scale to `workers`, or adapt between `minimum` and `maximum`',
    execute: args => {
      const cluster = clusterOf(args);
      const request =
        typeof args.workers === 'number'
          ? { workers: args.workers }
          : { adapt: { minimum: Number(args.minimum), maximum: Number(args.maximum) } };
      return model.scale(cluster.id as string, request);
    }
  });

  commands.addCommand(CommandIDs.shutdownCluster, {
    label: 'Shut Down Dask Cluster',
    execute: async args => {
      const cluster = clusterOf(args);
      if (settings.confirmShutdown) {
        const result = await showDialog({
          title: 'Shut down the Dask cluster?',
          body: `${cluster.name} and its ${cluster.workers?.running ?? 0} connected workers stop; their results are lost.`,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Shut down' })]
        });
        if (!result.button.accept) {
          return;
        }
      }
      await model.shutdown(cluster.id as string);
      for (const [key, widget] of dashboards) {
        if (key.startsWith(`${cluster.id}/`)) {
          widget.dispose();
          dashboards.delete(key);
        }
      }
    }
  });

  commands.addCommand(CommandIDs.insertClusterCode, {
    label: 'Insert Dask Cluster Connection Code',
    caption:
      'Insert the code that connects a Dask client to the cluster into the active notebook or console',
    execute: async args => {
      const cluster = clusterOf(args);
      const target = labShell.currentWidget;
      if (!cluster.connect_code || !target) {
        throw new Error('Open a notebook or a console first: the code goes into the active one.');
      }
      labShell.activateById(target.id);
      if (target.hasClass('jp-NotebookPanel')) {
        if (connectCodeGoesBelow(activeCellOf(target))) {
          await commands.execute('notebook:insert-cell-below');
        }
        await commands.execute('notebook:replace-selection', { text: cluster.connect_code });
      } else if (target.hasClass('jp-ConsolePanel')) {
        await commands.execute('console:replace-selection', { text: cluster.connect_code });
      } else {
        throw new Error('Open a notebook or a console first: the code goes into the active one.');
      }
    }
  });

  commands.addCommand(CommandIDs.openClusterDashboard, {
    label: args => (args.plot ? `Open Dask ${String(args.plot)} Plot` : 'Open Dask Dashboard'),
    caption:
      'Open the cluster dashboard, or one of its plots (`plot`: task-stream, progress, workers-memory)',
    execute: args => {
      const cluster = clusterOf(args);
      if (!cluster.dashboard_url) {
        throw new Error(
          `${cluster.name} has no dashboard (is bokeh installed where its scheduler runs?).`
        );
      }
      const plot = DASHBOARD_PLOTS.find(candidate => candidate.plot === args.plot);
      const key = `${cluster.id}/${plot?.plot ?? 'status'}`;
      let widget = dashboards.get(key);
      if (!widget || widget.isDisposed) {
        const url = plot
          ? dashboardPlotUrl(cluster.dashboard_url, plot.plot)
          : cluster.dashboard_url;
        const label = plot ? `${plot.label}: ${cluster.name}` : `Dashboard: ${cluster.name}`;
        widget = makeDashboardWidget(url, `sciencelab-dask-${key.replace('/', '-')}`, label);
        dashboards.set(key, widget);
        labShell.add(widget, 'main', { mode: plot ? 'split-right' : 'tab-after' });
      }
      labShell.activateById(widget.id);
    }
  });

  commands.addCommand(CommandIDs.showClusterLogs, {
    label: 'Show Dask Cluster Logs',
    caption:
      "The scheduler's and workers' logs; with `source` (a batch job's `log` key), that job's log only",
    execute: async args => {
      const cluster = clusterOf(args);
      const logs = await model.logs(cluster.id as string);
      const source = typeof args.source === 'string' ? args.source : null;
      if (source !== null && !(source in logs)) {
        throw new Error(`${cluster.name} has no log ${source} (the job was removed meanwhile).`);
      }
      const shown = source !== null ? { [source]: logs[source] } : logs;
      const widget = makeLogsWidget(
        source !== null ? `${cluster.name}, ${source}` : cluster.name,
        shown
      );
      labShell.add(widget, 'main');
      labShell.activateById(widget.id);
    }
  });
}

/**
 * What "Insert code" reads of a notebook panel: its active cell's type and source. JupyterLab's
 * `NotebookPanel` has them (`content.activeCell.model`); they are read structurally, so this
 * extension does not depend on `@jupyterlab/notebook` for two properties.
 */
interface INotebookPanelCells {
  content?: {
    activeCell?: { model: { type: string; sharedModel: { getSource(): string } } } | null;
  };
}

function activeCellOf(panel: Widget): { type: string; source: string } | null {
  const cell = (panel as Widget & INotebookPanelCells).content?.activeCell;
  return cell ? { type: cell.model.type, source: cell.model.sharedModel.getSource() } : null;
}

/**
 * The kernel session of the active notebook or console, if the current widget has one.
 */
function activeSession(labShell: ILabShell): ISessionContext | null {
  const widget = labShell.currentWidget as (Widget & { sessionContext?: ISessionContext }) | null;
  return widget?.sessionContext ?? null;
}

/**
 * Call `changed` when the active notebook or console changes, or its kernel does (a new notebook
 * gets its kernel a moment after it shows).
 */
function watchActiveKernel(labShell: ILabShell, changed: () => void): void {
  let watched: ISessionContext | null = null;
  labShell.currentChanged.connect(() => {
    watched?.kernelChanged.disconnect(changed);
    watched = activeSession(labShell);
    watched?.kernelChanged.connect(changed);
    changed();
  });
}
