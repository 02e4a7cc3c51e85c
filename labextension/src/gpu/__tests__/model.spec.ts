/**
 * @jest-environment node
 */
import { ServerConnection } from '@jupyterlab/services';

import { GpuMonitorModel } from '../model';
import { IGpuSnapshot } from '../types';
import { makeGpu, makeSample } from './fixtures';

const BASE_URL = 'http://localhost:8888/user/ada/';

/**
 * The WebSocket the model opens, driven by the spec: `receive` and `drop` play the server.
 */
class ScriptedSocket {
  static opened: ScriptedSocket[] = [];

  constructor(readonly url: string) {
    ScriptedSocket.opened.push(this);
  }

  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;

  receive(body: unknown): void {
    this.onmessage?.({ data: JSON.stringify(body) });
  }

  drop(): void {
    this.onclose?.();
  }

  close(): void {
    this.closed = true;
  }

  closed = false;
}

function serverSettings(answer: Response): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: BASE_URL,
    wsUrl: 'ws://localhost:8888/user/ada/',
    token: 'secret',
    appendToken: true,
    fetch: () => Promise.resolve(answer),
    WebSocket: ScriptedSocket as unknown as typeof WebSocket
  });
}

const SNAPSHOT: IGpuSnapshot = {
  current: makeSample([makeGpu()], 1000),
  history: [
    { time: 100, gpus: [] },
    { time: 1000, gpus: [{ uuid: 'GPU-0', utilization: 45, memory_used: 1 }] }
  ],
  settings: { interval: 1, history_seconds: 900, idle_threshold: 5, idle_duration: 600 }
};

describe('GpuMonitorModel', () => {
  let model: GpuMonitorModel;

  beforeEach(() => {
    ScriptedSocket.opened = [];
    jest.useFakeTimers();
  });

  afterEach(() => {
    model.dispose();
    jest.useRealTimers();
  });

  it('loads the history, then takes every sample from one WebSocket', async () => {
    model = new GpuMonitorModel({
      serverSettings: serverSettings(new Response(JSON.stringify(SNAPSHOT)))
    });
    await model.start();

    expect(model.current).toEqual(SNAPSHOT.current);
    expect(model.settings?.interval).toBe(1);
    expect(ScriptedSocket.opened.map(socket => socket.url)).toEqual([
      'ws://localhost:8888/user/ada/sciencelab/api/gpu/stream?token=secret'
    ]);

    ScriptedSocket.opened[0].receive(
      makeSample([makeGpu({ utilization: { gpu: 90, memory: 1 } })], 1030)
    );
    expect(model.current?.time).toBe(1030);
    // The point at t=100 has left the 900 s window.
    expect(model.history.map(point => point.time)).toEqual([1000, 1030]);
  });

  it('says the connection dropped and opens a new socket after a pause', async () => {
    model = new GpuMonitorModel({
      serverSettings: serverSettings(new Response(JSON.stringify(SNAPSHOT)))
    });
    await model.start();
    ScriptedSocket.opened[0].drop();

    expect(model.connectionError).toBe('Lost the connection to the GPU monitor; retrying in 1 s.');
    jest.advanceTimersByTime(1000);
    expect(ScriptedSocket.opened).toHaveLength(2);
    ScriptedSocket.opened[1].onopen?.();
    expect(model.connectionError).toBeNull();
  });

  it("shows the server's message when the history cannot be loaded", async () => {
    const refusal = new Response(JSON.stringify({ message: 'Forbidden: log in again' }), {
      status: 403
    });
    model = new GpuMonitorModel({ serverSettings: serverSettings(refusal) });
    await model.start();

    expect(model.connectionError).toBe('Forbidden: log in again');
    expect(model.current).toBeNull();
  });
});
