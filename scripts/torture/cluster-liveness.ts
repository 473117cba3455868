/**
 * Which members of a cluster the harness knows to be up: a node or gateway is marked down just
 * before it is killed (or stopped) and up once it printed its listening line (a node registers in
 * the Directory before it listens). A request opens a `Window` for its whole life; the window
 * collects every member that was down at any moment of it, so that a failure is judged against
 * what was really up throughout the request, not at one end of it.
 */
export interface Window {
  /** Nodes down at some moment since the window opened. */
  readonly nodesDown: Set<number>;
  /** Gateways down at some moment since the window opened. */
  readonly gatewaysDown: Set<number>;
}

export class Liveness {
  readonly #nodes: boolean[];
  readonly #gateways: boolean[];
  readonly #windows = new Set<Window>();
  #gatewayWaiters: (() => void)[] = [];

  constructor(nodes: number, gateways: number) {
    this.#nodes = Array.from({ length: nodes }, () => false);
    this.#gateways = Array.from({ length: gateways }, () => false);
  }

  get nodeCount(): number {
    return this.#nodes.length;
  }

  nodeUp(index: number): void {
    this.#nodes[index] = true;
  }

  nodeDown(index: number): void {
    this.#nodes[index] = false;
    for (const window of this.#windows) window.nodesDown.add(index);
  }

  gatewayUp(index: number): void {
    this.#gateways[index] = true;
    const waiters = this.#gatewayWaiters;
    this.#gatewayWaiters = [];
    for (const wake of waiters) wake();
  }

  gatewayDown(index: number): void {
    this.#gateways[index] = false;
    for (const window of this.#windows) window.gatewaysDown.add(index);
  }

  isNodeUp(index: number): boolean {
    return this.#nodes[index] === true;
  }

  isGatewayUp(index: number): boolean {
    return this.#gateways[index] === true;
  }

  upNodes(): number[] {
    return this.#nodes.flatMap((up, i) => (up ? [i] : []));
  }

  downNodes(): number[] {
    return this.#nodes.flatMap((up, i) => (up ? [] : [i]));
  }

  upGateways(): number[] {
    return this.#gateways.flatMap((up, i) => (up ? [i] : []));
  }

  downGateways(): number[] {
    return this.#gateways.flatMap((up, i) => (up ? [] : [i]));
  }

  /** Resolves once some gateway is up (at once if one is). */
  async someGateway(): Promise<void> {
    while (this.upGateways().length === 0) {
      await new Promise<void>((resolve) => this.#gatewayWaiters.push(resolve));
    }
  }

  open(): Window {
    const window: Window = {
      nodesDown: new Set(this.downNodes()),
      gatewaysDown: new Set(this.downGateways()),
    };
    this.#windows.add(window);
    return window;
  }

  close(window: Window): void {
    this.#windows.delete(window);
  }

  /** Nodes up from the window's opening until now. */
  upThroughout(window: Window): number[] {
    return this.#nodes.flatMap((up, i) => (up && !window.nodesDown.has(i) ? [i] : []));
  }
}
