// A local stand-in for the GitHub REST endpoints the action uses: issue comments, pull requests,
// deployments and deployment statuses, kept in memory. `deny` makes chosen endpoints answer 403
// the way a fork PR's read-only token gets answered.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Area = 'comments' | 'pulls' | 'deployments'

export interface FakeDeployment {
  id: number
  ref: string
  environment: string
  transient: boolean
  statuses: { state: string; environment_url?: string }[]
}

export class FakeGitHub {
  readonly comments = new Map<number, { id: number; body: string }[]>()
  readonly pulls = new Map<number, 'open' | 'closed'>()
  readonly deployments: FakeDeployment[] = []
  readonly requests: string[] = []
  readonly deny = new Set<Area>()
  private nextId = 1000
  private server: Server | undefined

  constructor(
    readonly repository: string,
    readonly token: string,
  ) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let text = ''
      req.on('data', (d: Buffer) => (text += d.toString()))
      req.on('end', () => this.handle(req, res, text))
    })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve))
  }

  private handle(req: IncomingMessage, res: ServerResponse, text: string): void {
    const url = new URL(req.url ?? '/', 'http://x')
    const method = req.method ?? 'GET'
    this.requests.push(`${method} ${url.pathname}`)
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { message: 'Bad credentials' })
    const prefix = `/repos/${this.repository}`
    if (!url.pathname.startsWith(prefix + '/')) return send(404, { message: 'Not Found' })
    const path = url.pathname.slice(prefix.length)
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {}
    const denied = (area: Area): boolean => {
      if (!this.deny.has(area)) return false
      send(403, { message: 'Resource not accessible by integration' })
      return true
    }
    let m: RegExpMatchArray | null

    if ((m = path.match(/^\/issues\/(\d+)\/comments$/))) {
      const list = this.comments.get(Number(m[1])) ?? []
      if (method === 'GET') {
        const per = Number(url.searchParams.get('per_page') ?? 30)
        const page = Number(url.searchParams.get('page') ?? 1)
        return send(200, list.slice((page - 1) * per, page * per))
      }
      if (method === 'POST') {
        if (denied('comments')) return
        const comment = { id: this.nextId++, body: String(body['body']) }
        this.comments.set(Number(m[1]), [...list, comment])
        return send(201, comment)
      }
    }
    if ((m = path.match(/^\/issues\/comments\/(\d+)$/)) && method === 'PATCH') {
      if (denied('comments')) return
      const comment = [...this.comments.values()].flat().find((c) => c.id === Number(m![1]))
      if (!comment) return send(404, { message: 'Not Found' })
      comment.body = String(body['body'])
      return send(200, comment)
    }
    if ((m = path.match(/^\/pulls\/(\d+)$/)) && method === 'GET') {
      if (denied('pulls')) return
      const state = this.pulls.get(Number(m[1]))
      return state ? send(200, { number: Number(m[1]), state }) : send(404, { message: 'Not Found' })
    }
    if (path === '/deployments' && method === 'POST') {
      if (denied('deployments')) return
      const d: FakeDeployment = {
        id: this.nextId++,
        ref: String(body['ref']),
        environment: String(body['environment']),
        transient: body['transient_environment'] === true,
        statuses: [],
      }
      this.deployments.push(d)
      return send(201, { id: d.id })
    }
    if (path === '/deployments' && method === 'GET') {
      const env = url.searchParams.get('environment')
      return send(
        200,
        this.deployments
          .filter((d) => !env || d.environment === env)
          .reverse()
          .map((d) => ({ id: d.id })),
      )
    }
    if ((m = path.match(/^\/deployments\/(\d+)\/statuses$/)) && method === 'POST') {
      if (denied('deployments')) return
      const d = this.deployments.find((x) => x.id === Number(m![1]))
      if (!d) return send(404, { message: 'Not Found' })
      d.statuses.push({ state: String(body['state']), environment_url: body['environment_url'] as string })
      return send(201, { id: this.nextId++ })
    }
    send(404, { message: `no fake for ${method} ${path}` })
  }
}
