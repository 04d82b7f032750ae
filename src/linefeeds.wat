;; Counts the line feeds (byte 10) in the first `len` bytes of its memory,
;; 16 bytes at a time with WebAssembly SIMD: each block's comparison (0 or -1
;; per byte) is subtracted from 16 byte-wide counters, which are summed into
;; the total before any can pass 255. src/linefeeds.ts copies the bytes in;
;; scripts/assemble-wasm.mjs turns this file into src/linefeeds-wasm.ts.
(module
  (memory (export "memory") 1)
  (func (export "count") (param $len i32) (result i32)
    (local $at i32) (local $blocksEnd i32) (local $run i32) (local $total i32)
    (local $counters v128) (local $lf v128)
    (local.set $lf (i8x16.splat (i32.const 10)))
    (local.set $blocksEnd (i32.and (local.get $len) (i32.const -16)))
    (block $blocksDone
      (loop $blocks
        (br_if $blocksDone (i32.ge_u (local.get $at) (local.get $blocksEnd)))
        (local.set $counters (v128.const i64x2 0 0))
        (local.set $run (i32.const 0))
        (block $runDone
          (loop $run
            (br_if $runDone (i32.ge_u (local.get $at) (local.get $blocksEnd)))
            (br_if $runDone (i32.eq (local.get $run) (i32.const 255)))
            (local.set $counters
              (i8x16.sub (local.get $counters) (i8x16.eq (v128.load (local.get $at)) (local.get $lf))))
            (local.set $at (i32.add (local.get $at) (i32.const 16)))
            (local.set $run (i32.add (local.get $run) (i32.const 1)))
            (br $run)))
        ;; 16 byte counters -> 4 sums -> the total
        (local.set $counters
          (i32x4.extadd_pairwise_i16x8_u (i16x8.extadd_pairwise_i8x16_u (local.get $counters))))
        (local.set $total
          (i32.add (local.get $total)
            (i32.add
              (i32.add (i32x4.extract_lane 0 (local.get $counters)) (i32x4.extract_lane 1 (local.get $counters)))
              (i32.add (i32x4.extract_lane 2 (local.get $counters)) (i32x4.extract_lane 3 (local.get $counters))))))
        (br $blocks)))
    ;; the last len % 16 bytes, one at a time
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $at) (local.get $len)))
        (if (i32.eq (i32.load8_u (local.get $at)) (i32.const 10))
          (then (local.set $total (i32.add (local.get $total) (i32.const 1)))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $tail)))
    (local.get $total)))
