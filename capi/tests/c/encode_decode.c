/* Encodes a synthetic 64x48 clip with the excam C API, writes IVF (argv[1]),
 * decodes it back with the C decoder API and checks sizes. Also runs the
 * ExCamera parallel encoder (argv[2]) and checks error reporting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "excam.h"

#define W 64
#define H 48
#define N 10
#define CW ((W + 1) / 2)
#define CH ((H + 1) / 2)

static int fail(const char *what) {
  fprintf(stderr, "FAIL %s: %s\n", what, excam_last_error());
  return 1;
}
static void le32(FILE *f, uint32_t v) { for (int i = 0; i < 4; i++) fputc((v >> (8 * i)) & 255, f); }
static void le16(FILE *f, uint32_t v) { fputc(v & 255, f); fputc((v >> 8) & 255, f); }

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  static uint8_t clip[N][W * H + 2 * CW * CH];
  for (int n = 0; n < N; n++) {
    uint8_t *y = clip[n], *u = y + W * H, *v = u + CW * CH;
    for (int r = 0; r < H; r++)
      for (int c = 0; c < W; c++) y[r * W + c] = (uint8_t)(((c + 2 * n) ^ r) * 3 + 16);
    for (int i = 0; i < CW * CH; i++) { u[i] = (uint8_t)(128 + (i + n) % 40); v[i] = (uint8_t)(100 + i % 60); }
  }
  printf("excam %s\n", excam_version());

  ExcamConfig cfg;
  if (excam_config_default(&cfg, W, H)) return fail("config");
  cfg.quantizer = 16; cfg.keyint = 5;
  /* Bad input gives NULL and a message. */
  ExcamConfig bad = cfg; bad.speed = 99;
  if (excam_encoder_new(&bad) || !strlen(excam_last_error())) return fail("bad speed accepted");
  if (excam_encoder_new(NULL)) return fail("NULL cfg accepted");
  if (excam_decoder_decode(NULL, NULL, 0) != EXCAM_ERROR) return fail("NULL decoder accepted");

  ExcamEncoder *enc = excam_encoder_new(&cfg);
  if (!enc) return fail("encoder_new");
  FILE *f = fopen(argv[1], "wb");
  if (!f) return 1;
  fwrite("DKIF", 1, 4, f); le16(f, 0); le16(f, 32); fwrite("VP80", 1, 4, f);
  le16(f, W); le16(f, H); le32(f, 30); le32(f, 1); le32(f, N); le32(f, 0);
  int packets = 0, keys = 0;
  for (int n = 0; n <= N; n++) {
    if (n < N) {
      const uint8_t *planes[3] = {clip[n], clip[n] + W * H, clip[n] + W * H + CW * CH};
      size_t strides[3] = {W, CW, CW};
      if (excam_encoder_send_frame(enc, planes, strides)) return fail("send_frame");
    } else if (excam_encoder_send_frame(enc, NULL, NULL)) return fail("flush");
    ExcamPacket p;
    int r;
    while ((r = excam_encoder_receive_packet(enc, &p)) == EXCAM_OK) {
      le32(f, (uint32_t)p.size); le32(f, (uint32_t)p.pts); le32(f, (uint32_t)(p.pts >> 32));
      fwrite(p.data, 1, p.size, f);
      packets++; keys += p.key;
    }
    if (r == EXCAM_ERROR) return fail("receive");
  }
  fclose(f);
  excam_encoder_free(enc);
  if (packets != N || keys != 2) { fprintf(stderr, "FAIL %d packets %d keys\n", packets, keys); return 1; }

  /* Decode the IVF back. */
  f = fopen(argv[1], "rb");
  uint8_t hdr[32], fh[12];
  if (fread(hdr, 1, 32, f) != 32) return 1;
  ExcamDecoder *dec = excam_decoder_new();
  int shown = 0;
  while (fread(fh, 1, 12, f) == 12) {
    size_t sz = fh[0] | fh[1] << 8 | fh[2] << 16 | (size_t)fh[3] << 24;
    uint8_t *buf = malloc(sz);
    if (fread(buf, 1, sz, f) != sz) return 1;
    int r = excam_decoder_decode(dec, buf, sz);
    free(buf);
    if (r == EXCAM_ERROR) return fail("decode");
    ExcamPicture pic;
    if (excam_decoder_get_picture(dec, &pic) != EXCAM_OK) return fail("get_picture");
    if (pic.width != W || pic.height != H || pic.strides[0] < W || pic.strides[1] < CW) return fail("picture size");
    shown++;
  }
  fclose(f);
  uint8_t junk[5] = {1, 2, 3, 4, 5};
  if (excam_decoder_decode(dec, junk, 5) != EXCAM_ERROR) return fail("junk accepted");
  excam_decoder_free(dec);
  if (shown != N) { fprintf(stderr, "FAIL shown %d\n", shown); return 1; }

  /* ExCamera[3,2]: packets plus an IVF file. */
  ExcamPackets out;
  cfg.keyint = 0;
  if (excam_encode_parallel(&cfg, &clip[0][0], N, 3, 2, argv[2], &out)) return fail("encode_parallel");
  if (out.count != N || !out.packets[0].key) return fail("parallel packets");
  for (size_t i = 1; i < out.count; i++) if (out.packets[i].key) return fail("parallel: extra key frame");
  excam_packets_free(&out);
  printf("ok %d frames\n", shown);
  return 0;
}
