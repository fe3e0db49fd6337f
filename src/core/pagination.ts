// The list convention: `?page=&page_size=` in, `{items, total, page, page_size, total_pages}` out.
import { z } from 'zod';

export const pageQuery = {
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  page_size: z.coerce.number().int().min(1).max(200).default(50),
};

export interface PageRequest {
  page: number;
  page_size: number;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  page_size: number;
  total_pages: number;
}

export function pageOf<S extends z.ZodType>(item: S) {
  return z.object({
    items: z.array(item),
    total: z.number().int(),
    page: z.number().int(),
    page_size: z.number().int(),
    total_pages: z.number().int(),
  });
}

export function toPage<T>(items: T[], total: number, req: PageRequest): Page<T> {
  return {
    items,
    total,
    page: req.page,
    page_size: req.page_size,
    total_pages: Math.ceil(total / req.page_size),
  };
}

export function offsetOf(req: PageRequest): number {
  return (req.page - 1) * req.page_size;
}
