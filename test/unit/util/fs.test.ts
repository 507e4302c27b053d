import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { linkTree } from '../../../src/util/fs.js'

describe('linkTree', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linktree-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('mirrors a model directory with hard links: same inodes, no second copy of the bytes', async () => {
    const src = join(dir, 'model')
    await mkdir(join(src, 'data', 'nested'), { recursive: true })
    await writeFile(join(src, 'MLmodel'), 'flavors: {}\n')
    await writeFile(join(src, 'data', 'nested', 'model.pkl'), Buffer.alloc(4096, 7))
    const dest = join(dir, 'context', 'model')

    expect(await linkTree(src, dest)).toEqual({ linked: 2, copied: 0 })
    for (const f of ['MLmodel', 'data/nested/model.pkl']) {
      const [a, b] = await Promise.all([stat(join(src, f)), stat(join(dest, f))])
      expect(b.ino).toBe(a.ino)
    }
    expect(await readFile(join(dest, 'MLmodel'), 'utf8')).toBe('flavors: {}\n')
  })

  it("copies a symlink's target instead of linking the link", async () => {
    const src = join(dir, 'model')
    await mkdir(src)
    await writeFile(join(dir, 'outside.txt'), 'target')
    await symlink(join(dir, 'outside.txt'), join(src, 'link.txt'))
    expect(await linkTree(src, join(dir, 'out'))).toEqual({ linked: 0, copied: 1 })
    expect((await stat(join(dir, 'out', 'link.txt'))).isFile()).toBe(true)
    expect(await readFile(join(dir, 'out', 'link.txt'), 'utf8')).toBe('target')
  })
})
