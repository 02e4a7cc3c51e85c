/**
 * Main-area widgets of the Dask section: a cluster's dashboard or one of its plots, its logs.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { IFrame } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { newestFirst } from './model';

/**
 * The dashboard (or one Bokeh plot of it) in a lab tab.
 *
 * Bokeh needs scripts and its own origin's WebSocket; the dashboard comes through the server's
 * jupyter-server-proxy (or the gateway), so the frame keeps `allow-scripts` and `allow-same-origin`.
 */
export function makeDashboardWidget(
  url: string,
  id: string,
  label: string
): MainAreaWidget<IFrame> {
  const frame = new IFrame({ sandbox: ['allow-scripts', 'allow-same-origin'] });
  frame.url = url;
  frame.addClass('sciencelab-DaskDashboard');
  const widget = new MainAreaWidget({ content: frame });
  widget.id = id;
  widget.title.label = label;
  widget.title.closable = true;
  return widget;
}

/**
 * The scheduler's and every worker's recent log lines, one titled block per source, newest first.
 */
export function makeLogsWidget(
  clusterName: string,
  logs: Record<string, string>
): MainAreaWidget<Widget> {
  const content = new Widget();
  content.addClass('sciencelab-DaskLogs');
  const order = document.createElement('p');
  order.className = 'sciencelab-status';
  order.textContent = 'Newest lines first.';
  content.node.append(order);
  for (const [source, text] of Object.entries(logs)) {
    const heading = document.createElement('h3');
    heading.textContent = source;
    const lines = document.createElement('pre');
    lines.textContent = newestFirst(text) || '(no log lines)';
    content.node.append(heading, lines);
  }
  const widget = new MainAreaWidget({ content });
  widget.title.label = `Logs: ${clusterName}`;
  widget.title.closable = true;
  return widget;
}
