/**
 * The "Dask clusters" section of the ScienceLab sidebar: the user's clusters with their live
 * state, the "New cluster" form built from the template's JSON Schema, scale and adapt controls.
 *
 * Actions go through the commands in `CommandIDs`, so the panel, the palette and other
 * extensions share one behaviour (confirmation, error messages).
 */
import { FormComponent, ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { JSONObject, ReadonlyJSONObject } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';
import type { IChangeEvent } from '@rjsf/core';
import type { ErrorSchema } from '@rjsf/utils';
import React, { useEffect, useState } from 'react';

import { SciencelabRequestError } from '../request';
import { formatBytes } from '../sidebar/profile';
import { CommandIDs } from '../tokens';
import { ICluster, ITemplate, IWorker } from './api';
import {
  DASHBOARD_PLOTS,
  DaskClustersModel,
  defaultEnvironment,
  summarizeStates,
  summarizeWorkers
} from './model';
import {
  fieldError,
  numberFieldErrors,
  numberFieldMessage,
  serverSideValidator,
  wholeNumber
} from './validator';

/**
 * Rows of the per-worker table: the busiest first; a cluster may have thousands of workers.
 */
const WORKER_ROWS = 50;

/**
 * What the section needs besides its model.
 */
export interface IDaskPanelOptions {
  model: DaskClustersModel;
  commands: CommandRegistry;
  /**
   * The template preselected in the form (the `defaultTemplate` setting); '' for the first.
   */
  defaultTemplate: () => string;
  /**
   * The kernel of the active notebook or console, to preselect the matching environment.
   */
  activeKernel: () => string | null;
  /**
   * Emits the active kernel's name when it changes: a notebook just opened has no kernel yet.
   */
  activeKernelChanged: ISignal<unknown, string | null>;
}

/**
 * The sidebar section: a `ReactWidget` redrawn whenever the model changes.
 */
export class DaskSection extends ReactWidget {
  constructor(private readonly _options: IDaskPanelOptions) {
    super();
    this.id = 'sciencelab-dask-section';
    this.title.label = 'Dask clusters';
    this.addClass('sciencelab-DaskSection');
  }

  /**
   * Open the "New cluster" form, with `template` selected if given (else the default template).
   */
  openForm(template?: string): void {
    this._form = { open: true, template: template ?? null, serial: this._form.serial + 1 };
    this.update();
  }

  closeForm(): void {
    this._form = { ...this._form, open: false };
    this.update();
  }

  protected render(): JSX.Element {
    const { model } = this._options;
    return (
      <UseSignal signal={model.changed}>
        {() => (
          <DaskPanel
            {...this._options}
            form={this._form}
            openForm={() => this.openForm()}
            closeForm={() => this.closeForm()}
          />
        )}
      </UseSignal>
    );
  }

  private _form: IFormState = { open: false, template: null, serial: 0 };
}

/**
 * Whether the form shows, with which template; a new `serial` starts a fresh form.
 */
interface IFormState {
  open: boolean;
  template: string | null;
  serial: number;
}

function DaskPanel(
  props: IDaskPanelOptions & { form: IFormState; openForm: () => void; closeForm: () => void }
): JSX.Element {
  const { model, form } = props;
  const managed = model.clusters.filter(cluster => cluster.managed);
  const elsewhere = model.clusters.filter(cluster => !cluster.managed);
  return (
    <div className="sciencelab-DaskPanel">
      {model.error && (
        <p className="sciencelab-error" role="alert">
          {model.error}
        </p>
      )}
      {form.open ? (
        <NewClusterForm
          key={form.serial}
          {...props}
          initialTemplate={form.template ?? props.defaultTemplate()}
          onDone={props.closeForm}
        />
      ) : (
        <button
          className="jp-mod-styled jp-mod-accept sciencelab-DaskNew"
          onClick={props.openForm}
          disabled={model.templates.length === 0}
        >
          New cluster
        </button>
      )}
      {managed.length === 0 && elsewhere.length === 0 && !model.error && (
        <p className="sciencelab-status">No Dask cluster yet.</p>
      )}
      <ul className="sciencelab-DaskClusters">
        {managed.map(cluster => (
          <ClusterCard key={cluster.id} cluster={cluster} {...props} />
        ))}
        {elsewhere.map(cluster => (
          <ElsewhereCard key={`${cluster.template}/${cluster.name}`} cluster={cluster} {...props} />
        ))}
      </ul>
    </div>
  );
}

/**
 * The form generated from the selected template's JSON Schema, with the server's errors inline.
 */
function NewClusterForm(
  props: IDaskPanelOptions & { initialTemplate: string; onDone: () => void }
): JSX.Element {
  const { model, activeKernel } = props;
  const available = model.templates;
  const [name, setName] = useState(
    available.some(t => t.name === props.initialTemplate)
      ? props.initialTemplate
      : (available[0]?.name ?? '')
  );
  const template = model.template(name);
  const [formData, setFormData] = useState<ReadonlyJSONObject>(() =>
    initialOptions(template, activeKernel())
  );
  // Until the user picks an environment, the form follows the active notebook's kernel.
  const [environmentPicked, setEnvironmentPicked] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<ErrorSchema<ReadonlyJSONObject>>({});

  useEffect(() => {
    const properties = (template?.schema.properties ?? {}) as JSONObject;
    if (environmentPicked || !template || !('environment' in properties)) {
      return;
    }
    const follow = (_: unknown, kernel: string | null): void => {
      const environment = defaultEnvironment(template, kernel);
      if (environment) {
        setFormData(data => ({ ...data, environment }));
      }
    };
    props.activeKernelChanged.connect(follow);
    return () => {
      props.activeKernelChanged.disconnect(follow);
    };
  }, [template, environmentPicked, props.activeKernelChanged]);

  const changeOptions = (next: ReadonlyJSONObject): void => {
    if (next.environment !== formData.environment) {
      setEnvironmentPicked(true);
    }
    setFormData(next);
  };

  const chooseTemplate = (next: string): void => {
    setName(next);
    setEnvironmentPicked(false);
    setFormData(initialOptions(model.template(next), activeKernel()));
    setError(null);
    setFieldErrors({});
  };

  const create = async (): Promise<void> => {
    setError(null);
    const blank = template ? numberFieldErrors(template.schema, formData) : {};
    setFieldErrors(blank);
    if (Object.keys(blank).length > 0) {
      return;
    }
    setBusy(true);
    try {
      await props.commands.execute(CommandIDs.createCluster, { template: name, options: formData });
      props.onDone();
    } catch (failure) {
      const message = failure instanceof Error ? failure.message : String(failure);
      const field = failure instanceof SciencelabRequestError ? failure.details.field : undefined;
      const properties = (template?.schema.properties ?? {}) as JSONObject;
      if (typeof field === 'string' && field in properties) {
        setFieldErrors(fieldError(field, message));
      } else {
        setError(message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="sciencelab-DaskForm"
      onSubmit={event => {
        event.preventDefault();
        void create();
      }}
    >
      <label className="sciencelab-DaskTemplate">
        Template
        <select
          className="jp-mod-styled"
          value={name}
          onChange={event => chooseTemplate(event.target.value)}
          aria-label="Cluster template"
        >
          {available.map(t => (
            <option key={t.name} value={t.name}>
              {t.title}
            </option>
          ))}
        </select>
      </label>
      {template && !template.available && (
        <p className="sciencelab-error" role="alert">
          {template.error}
        </p>
      )}
      {template && (
        <FormComponent
          schema={template.schema}
          formData={formData}
          onChange={(event: IChangeEvent<ReadonlyJSONObject>) =>
            changeOptions(event.formData ?? {})
          }
          validator={serverSideValidator}
          extraErrors={fieldErrors}
          showErrorList={false}
          compact={true}
          tagName="div"
        />
      )}
      {error && (
        <p className="sciencelab-error" role="alert">
          {error}
        </p>
      )}
      <div className="sciencelab-DaskButtons">
        <button type="submit" className="jp-mod-styled jp-mod-accept" disabled={busy || !template}>
          {busy ? 'Creating…' : 'Create'}
        </button>
        <button type="button" className="jp-mod-styled jp-mod-reject" onClick={props.onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/**
 * The form's first values: the schema's defaults, and the environment of the active kernel.
 */
function initialOptions(template: ITemplate | undefined, kernel: string | null): JSONObject {
  if (!template) {
    return {};
  }
  const options: JSONObject = {};
  const properties = (template.schema.properties ?? {}) as Record<string, JSONObject>;
  for (const [field, spec] of Object.entries(properties)) {
    if (spec.default !== undefined) {
      options[field] = spec.default;
    }
  }
  const environment = defaultEnvironment(template, kernel);
  if ('environment' in properties && environment) {
    options.environment = environment;
  }
  return options;
}

/**
 * One cluster: its state, its actions, its workers.
 */
function ClusterCard(props: IDaskPanelOptions & { cluster: ICluster }): JSX.Element {
  const { cluster, commands } = props;
  const id = cluster.id as string;
  const [error, setError] = useState<string | null>(null);
  const run = (command: string, args: JSONObject): void => {
    setError(null);
    commands.execute(command, { id, ...args }).catch((failure: unknown) => {
      setError(failure instanceof Error ? failure.message : String(failure));
    });
  };
  const workers = cluster.worker_list ?? [];
  const summary = summarizeWorkers(workers);
  return (
    <li className="sciencelab-DaskCluster" data-cluster-id={id} data-status={cluster.status}>
      <div className="sciencelab-DaskClusterHeading">
        <span className="sciencelab-DaskClusterName">{cluster.name}</span>
        <span className={`sciencelab-DaskStatus sciencelab-mod-${cluster.status}`}>
          {cluster.status}
        </span>
      </div>
      <WorkerSummary cluster={cluster} />
      <p className="sciencelab-DaskResources">
        {cluster.cores ?? 0} cores · {formatBytes(summary.memory)} of{' '}
        {formatBytes(summary.memoryLimit)}
        {summary.cpu !== null && ` · CPU ${Math.round(summary.cpu)}%`}
        {summary.gpuUtilization !== null &&
          ` · GPU ${Math.round(summary.gpuUtilization)}%, ${formatBytes(summary.gpuMemory)} of ${formatBytes(summary.gpuMemoryTotal)}`}
      </p>
      {cluster.error && <p className="sciencelab-error">{cluster.error}</p>}
      <div className="sciencelab-DaskButtons">
        <button className="jp-mod-styled" onClick={() => run(CommandIDs.insertClusterCode, {})}>
          Insert code
        </button>
        <button className="jp-mod-styled" onClick={() => run(CommandIDs.showClusterLogs, {})}>
          Logs
        </button>
        <button
          className="jp-mod-styled jp-mod-warn"
          onClick={() => run(CommandIDs.shutdownCluster, {})}
        >
          Shut down
        </button>
      </div>
      {cluster.dashboard_url && (
        <div className="sciencelab-DaskPlots">
          <span>Dashboard</span>
          <button
            className="jp-mod-styled"
            title="The whole dashboard in a lab tab"
            onClick={() => run(CommandIDs.openClusterDashboard, {})}
          >
            Status
          </button>
          {DASHBOARD_PLOTS.map(({ plot, label }) => (
            <button
              key={plot}
              className="jp-mod-styled sciencelab-DaskPlot"
              title={`The ${label.toLowerCase()} plot in a lab panel`}
              onClick={() => run(CommandIDs.openClusterDashboard, { plot })}
            >
              {label}
            </button>
          ))}
        </div>
      )}
      <ScaleControls
        cluster={cluster}
        template={props.model.template(cluster.template)}
        run={run}
      />
      {error && (
        <p className="sciencelab-error" role="alert">
          {error}
        </p>
      )}
      {workers.length > 0 && (
        <WorkerTable
          workers={workers}
          showLog={source => run(CommandIDs.showClusterLogs, { source })}
        />
      )}
    </li>
  );
}

/**
 * A fixed number of workers, or adaptive bounds (when the template allows them).
 */
function ScaleControls(props: {
  cluster: ICluster;
  template: ITemplate | undefined;
  run: (command: string, args: JSONObject) => void;
}): JSX.Element {
  const { cluster, template, run } = props;
  const bounds = (template?.schema.properties as Record<string, JSONObject> | undefined)?.workers;
  const adaptive = Boolean((template?.schema.properties as JSONObject | undefined)?.adapt_maximum);
  // What the user typed, read when a button is pressed: a blank field is no number, not 0.
  const [workers, setWorkers] = useState(String(cluster.workers?.requested ?? 0));
  const [minimum, setMinimum] = useState(
    String(cluster.adapt?.minimum ?? Number(bounds?.minimum ?? 0))
  );
  const [maximum, setMaximum] = useState(
    String(cluster.adapt?.maximum ?? Number(bounds?.maximum ?? 1))
  );
  const [problem, setProblem] = useState<string | null>(null);
  const limits = {
    min: Number(bounds?.minimum ?? 0),
    max: bounds ? Number(bounds.maximum) : undefined
  };
  const input = (label: string, value: string, set: (value: string) => void): JSX.Element => (
    <input
      type="number"
      className="jp-mod-styled"
      aria-label={`${label} of ${cluster.name}`}
      value={value}
      {...limits}
      onChange={event => set(event.target.value)}
    />
  );
  // Sends `fields` once each is a whole number; otherwise says which one is not.
  const send = (fields: Record<string, string>): void => {
    const values: JSONObject = {};
    for (const [field, text] of Object.entries(fields)) {
      const value = wholeNumber(text);
      if (value === null) {
        const description = bounds?.description;
        setProblem(numberFieldMessage(field, true, description ? String(description) : undefined));
        return;
      }
      values[field] = value;
    }
    setProblem(null);
    run(CommandIDs.scaleCluster, values);
  };
  return (
    <div className="sciencelab-DaskScale">
      <label>
        Workers
        {input('Workers', workers, setWorkers)}
      </label>
      <button className="jp-mod-styled" onClick={() => send({ workers })}>
        Scale
      </button>
      {adaptive && (
        <>
          <label>
            Adapt
            {input('Adaptive minimum', minimum, setMinimum)}–
            {input('Adaptive maximum', maximum, setMaximum)}
          </label>
          <button className="jp-mod-styled" onClick={() => send({ minimum, maximum })}>
            Adapt
          </button>
        </>
      )}
      {problem && (
        <p className="sciencelab-error sciencelab-DaskScaleError" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}

/**
 * "3 of 10 workers connected, 5 queued (Idle), 2 held: '…'": each part shows its reasons on hover.
 */
function WorkerSummary(props: { cluster: ICluster }): JSX.Element {
  const parts = summarizeStates(props.cluster);
  return (
    <p className="sciencelab-DaskWorkers">
      {parts.map((part, index) => (
        <React.Fragment key={part.state}>
          {index > 0 && ', '}
          <span
            className={`sciencelab-DaskWorkerState sciencelab-mod-${part.state}`}
            data-state={part.state}
            title={part.tooltip || undefined}
          >
            {part.text}
          </span>
        </React.Fragment>
      ))}
    </p>
  );
}

/**
 * Per-worker state (with its reason), memory, CPU and GPU, the busiest workers first; a link to
 * each batch job's log.
 */
function WorkerTable(props: {
  workers: ReadonlyArray<IWorker>;
  showLog: (source: string) => void;
}): JSX.Element {
  const rows = [...props.workers]
    .sort((a, b) => (b.memory ?? 0) - (a.memory ?? 0))
    .slice(0, WORKER_ROWS);
  const hidden = props.workers.length - rows.length;
  const withLogs = props.workers.some(worker => worker.log);
  return (
    <details className="sciencelab-DaskWorkerTable">
      <summary>Workers</summary>
      <table>
        <thead>
          <tr>
            <th>Worker</th>
            <th>State</th>
            <th>Memory</th>
            <th>CPU</th>
            <th>GPU</th>
            {withLogs && <th>Job</th>}
          </tr>
        </thead>
        <tbody>
          {rows.map(worker => (
            <tr key={worker.name} data-state={worker.state} title={workerTooltip(worker)}>
              <td>{worker.name}</td>
              <td>
                {worker.state}
                {worker.reason && worker.state !== 'connected' && (
                  <div className="sciencelab-DaskWorkerReason">{worker.reason}</div>
                )}
              </td>
              <td>{worker.memory !== null ? formatBytes(worker.memory) : ''}</td>
              <td>{worker.cpu !== null ? `${Math.round(worker.cpu)}%` : ''}</td>
              <td>
                {worker.gpu_utilization !== null ? `${Math.round(worker.gpu_utilization)}%` : ''}
              </td>
              {withLogs && (
                <td>
                  {worker.log && (
                    <button
                      className="jp-mod-styled sciencelab-DaskJobLog"
                      title={`The log of job ${worker.job_id}`}
                      onClick={() => props.showLog(worker.log as string)}
                    >
                      {worker.job_id}
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {hidden > 0 && <p className="sciencelab-status">and {hidden} more workers</p>}
    </details>
  );
}

function workerTooltip(worker: IWorker): string | undefined {
  const lines = [worker.reason, worker.detail].filter(Boolean);
  return lines.length ? lines.join('\n') : undefined;
}

/**
 * A cluster of the user that this server does not manage (made in notebook code): adoptable.
 */
function ElsewhereCard(props: IDaskPanelOptions & { cluster: ICluster }): JSX.Element {
  const { cluster, model } = props;
  const [error, setError] = useState<string | null>(null);
  return (
    <li className="sciencelab-DaskCluster sciencelab-mod-elsewhere" data-status={cluster.status}>
      <div className="sciencelab-DaskClusterHeading">
        <span className="sciencelab-DaskClusterName">{cluster.name}</span>
        <span className={`sciencelab-DaskStatus sciencelab-mod-${cluster.status}`}>
          {cluster.status}
        </span>
      </div>
      <p className="sciencelab-status">
        Made outside this panel ({model.template(cluster.template)?.title ?? cluster.template}).
      </p>
      <button
        className="jp-mod-styled"
        onClick={() =>
          model.adopt(cluster.template, cluster.name).catch((failure: unknown) => {
            setError(failure instanceof Error ? failure.message : String(failure));
          })
        }
      >
        Adopt
      </button>
      {error && (
        <p className="sciencelab-error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}
