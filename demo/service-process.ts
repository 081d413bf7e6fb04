import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { DemoLogger } from './logger';
import {
  isChildMessage,
  SERVICE_CONFIG_ENV,
  type ChildMessage,
  type ParentMessage,
  type ServiceName,
  type ServiceProcessConfig,
} from './messages';

const REPOSITORY_ROOT = path.resolve(__dirname, '..');
const SERVICE_MAIN = path.join(__dirname, 'service-main.ts');
const REQUEST_TIMEOUT_MS = 5000;

type PendingRequest = { resolve(): void; reject(error: Error): void; timer: NodeJS.Timeout };

/** A parent message that expects an acknowledgement, before the id is added. */
type ParentRequest =
  | Omit<Extract<ParentMessage, { type: 'configure' }>, 'id'>
  | Omit<Extract<ParentMessage, { type: 'set-faults' }>, 'id'>;

/** One service's child process and its IPC channel. */
export class ServiceProcess {
  readonly name: ServiceName;
  /** service.instance.id, set when the service runs more than one instance. */
  readonly instance: string | undefined;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly readyListeners: Array<(result: number | Error) => void> = [];
  private port: number | undefined;
  private exitReason: string | undefined;
  private stopping = false;
  private nextId = 1;

  constructor(
    config: ServiceProcessConfig,
    private readonly log: DemoLogger,
  ) {
    this.name = config.service;
    this.instance = config.instance;
    this.child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), SERVICE_MAIN], {
      cwd: REPOSITORY_ROOT,
      env: { ...process.env, [SERVICE_CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.handleExit(code === null ? `signal ${signal}` : `exit code ${code}`);
        resolve();
      });
    });
    this.child.on('error', (error) =>
      this.log.error({ service: this.name, error: error.message }, 'service process error'),
    );
    this.child.on('message', (message) => this.handleMessage(message));
  }

  waitUntilReady(timeoutMs: number): Promise<number> {
    if (this.port !== undefined) {
      return Promise.resolve(this.port);
    }
    if (this.exitReason !== undefined) {
      return Promise.reject(this.exitError());
    }

    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`service ${this.name} did not start within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.readyListeners.push((result) => {
        clearTimeout(timer);
        if (result instanceof Error) {
          reject(result);
        } else {
          resolve(result);
        }
      });
    });
  }

  /** Sends a message and waits for the service's acknowledgement. */
  request(message: ParentRequest): Promise<void> {
    if (this.exitReason !== undefined || !this.child.connected) {
      return Promise.reject(this.exitError());
    }

    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new Error(
            `service ${this.name} did not acknowledge ${message.type} within ${REQUEST_TIMEOUT_MS} ms`,
          ),
        );
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.child.send({ ...message, id } as ParentMessage, (error) => {
        if (error) {
          this.settle(id, error.message);
        }
      });
    });
  }

  /** Asks the service to flush and exit, and kills it with SIGKILL after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.exitReason !== undefined) {
      return;
    }

    // SIGTERM leads to the same flush and exit when the IPC channel is gone.
    const shutdown: ParentMessage = { type: 'shutdown' };
    if (this.child.connected) {
      this.child.send(shutdown, (error) => error && this.child.kill('SIGTERM'));
    } else {
      this.child.kill('SIGTERM');
    }

    const timer = setTimeout(() => {
      this.log.warn({ service: this.name, timeoutMs }, 'service did not exit in time, killing it');
      this.child.kill('SIGKILL');
    }, timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  private handleMessage(message: unknown): void {
    if (!isChildMessage(message)) {
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: ChildMessage): void {
    switch (message.type) {
      case 'ready':
        this.port = message.port;
        this.notifyReady(message.port);
        return;
      case 'ack':
        this.settle(message.id, message.error);
        return;
      case 'log':
        this.log[message.level]({ service: this.name, ...message.fields }, message.message);
        return;
    }
  }

  private settle(id: number, error: string | undefined): void {
    const request = this.pending.get(id);
    if (!request) {
      return;
    }
    this.pending.delete(id);
    clearTimeout(request.timer);
    if (error === undefined) {
      request.resolve();
    } else {
      request.reject(new Error(`service ${this.name} rejected the request: ${error}`));
    }
  }

  private handleExit(reason: string): void {
    this.exitReason = reason;
    if (!this.stopping) {
      this.log.error({ service: this.name, reason }, 'service process exited unexpectedly');
    }

    const error = this.exitError();
    this.notifyReady(error);
    for (const request of this.pending.values()) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    this.pending.clear();
  }

  private notifyReady(result: number | Error): void {
    for (const listener of this.readyListeners.splice(0)) {
      listener(result);
    }
  }

  private exitError(): Error {
    return new Error(`service ${this.name} is not running (${this.exitReason ?? 'disconnected'})`);
  }
}
