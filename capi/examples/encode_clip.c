/* encode_clip: the excam C API on a real clip, as a video tool would use it.
 *
 *   encode_clip IN.y4m SERIAL.ivf DECODED.yuv PARALLEL.ivf
 *
 * Reads an 8-bit 4:2:0 Y4M clip, encodes it with the streaming encoder
 * (send frames, receive packets) into SERIAL.ivf, decodes that file back
 * with the decoder API into raw I420 (DECODED.yuv, the bytes
 * `vpxdec --i420` writes), and encodes the whole clip ExCamera-style
 * (excam_encode_parallel, chunks of 4 frames on 2 threads) into
 * PARALLEL.ivf.
 *
 * Build against an installed libexcam:
 *   cc encode_clip.c $(pkg-config --cflags --libs excam) -o encode_clip
 */
#include <excam.h> /* installed as include/excam/excam.h; pkg-config adds the -I */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
  fprintf(stderr, "encode_clip: %s: %s\n", what, excam_last_error());
  return 1;
}

static void put_le(FILE *f, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) fputc((int)((v >> (8 * i)) & 255), f);
}

/* Reads the Y4M header; returns 0 and the size and rate, or -1. */
static int read_y4m_header(FILE *f, unsigned *w, unsigned *h, unsigned *fn, unsigned *fd) {
  char line[512];
  if (!fgets(line, sizeof line, f) || strncmp(line, "YUV4MPEG2 ", 10)) return -1;
  *w = *h = 0;
  *fn = 30;
  *fd = 1;
  for (char *t = strtok(line + 10, " \n"); t; t = strtok(NULL, " \n")) {
    if (t[0] == 'W') *w = (unsigned)atoi(t + 1);
    if (t[0] == 'H') *h = (unsigned)atoi(t + 1);
    if (t[0] == 'F') sscanf(t + 1, "%u:%u", fn, fd);
    if (t[0] == 'C' && strncmp(t, "C420", 4)) return -1;
  }
  return *w && *h ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: encode_clip IN.y4m SERIAL.ivf DECODED.yuv PARALLEL.ivf\n");
    return 2;
  }
  FILE *in = fopen(argv[1], "rb");
  if (!in) return perror(argv[1]), 1;
  unsigned w, h, fps_num, fps_den;
  if (read_y4m_header(in, &w, &h, &fps_num, &fps_den)) {
    fprintf(stderr, "encode_clip: %s is not 8-bit 4:2:0 Y4M\n", argv[1]);
    return 1;
  }
  const size_t cw = (w + 1) / 2, ch = (h + 1) / 2;
  const size_t frame_len = (size_t)w * h + 2 * cw * ch;

  /* The whole clip, tightly packed I420, as excam_encode_parallel takes it. */
  uint8_t *clip = NULL;
  size_t frames = 0;
  char tag[64];
  while (fgets(tag, sizeof tag, in) && !strncmp(tag, "FRAME", 5)) {
    uint8_t *grown = realloc(clip, (frames + 1) * frame_len);
    if (!grown) return 1;
    clip = grown;
    if (fread(clip + frames * frame_len, 1, frame_len, in) != frame_len) break;
    frames++;
  }
  fclose(in);
  if (!frames) {
    fprintf(stderr, "encode_clip: %s has no frames\n", argv[1]);
    return 1;
  }

  ExcamConfig cfg;
  if (excam_config_default(&cfg, w, h)) return fail("config");
  cfg.fps_num = fps_num;
  cfg.fps_den = fps_den;
  cfg.quantizer = 24;
  cfg.keyint = 0;
  cfg.speed = 6;

  /* Streaming encode into an IVF file. */
  ExcamEncoder *enc = excam_encoder_new(&cfg);
  if (!enc) return fail("excam_encoder_new");
  FILE *ivf = fopen(argv[2], "wb");
  if (!ivf) return perror(argv[2]), 1;
  fwrite("DKIF", 1, 4, ivf);
  put_le(ivf, 0, 2);
  put_le(ivf, 32, 2);
  fwrite("VP80", 1, 4, ivf);
  put_le(ivf, w, 2);
  put_le(ivf, h, 2);
  put_le(ivf, fps_num, 4); /* IVF's timebase is frame-rate ticks */
  put_le(ivf, fps_den, 4);
  put_le(ivf, frames, 4);
  put_le(ivf, 0, 4);
  size_t packets = 0;
  for (size_t n = 0; n <= frames; n++) {
    int r;
    if (n < frames) {
      const uint8_t *y = clip + n * frame_len;
      const uint8_t *planes[3] = {y, y + (size_t)w * h, y + (size_t)w * h + cw * ch};
      size_t strides[3] = {w, cw, cw};
      r = excam_encoder_send_frame(enc, planes, strides);
    } else {
      r = excam_encoder_send_frame(enc, NULL, NULL); /* flush */
    }
    if (r != EXCAM_OK) return fail("excam_encoder_send_frame");
    ExcamPacket p;
    while ((r = excam_encoder_receive_packet(enc, &p)) == EXCAM_OK) {
      put_le(ivf, p.size, 4);
      put_le(ivf, p.pts, 8);
      fwrite(p.data, 1, p.size, ivf);
      packets++;
    }
    if (r == EXCAM_ERROR) return fail("excam_encoder_receive_packet");
  }
  excam_encoder_free(enc);
  if (fclose(ivf)) return perror(argv[2]), 1;
  if (packets != frames) {
    fprintf(stderr, "encode_clip: %zu packets for %zu frames\n", packets, frames);
    return 1;
  }

  /* Decode it back to raw I420. */
  ivf = fopen(argv[2], "rb");
  FILE *yuv = fopen(argv[3], "wb");
  if (!ivf || !yuv) return perror("decode files"), 1;
  uint8_t hdr[32], fh[12];
  if (fread(hdr, 1, 32, ivf) != 32) return 1;
  ExcamDecoder *dec = excam_decoder_new();
  if (!dec) return fail("excam_decoder_new");
  size_t shown = 0;
  while (fread(fh, 1, 12, ivf) == 12) {
    size_t size = fh[0] | fh[1] << 8 | fh[2] << 16 | (size_t)fh[3] << 24;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf || fread(buf, 1, size, ivf) != size) return 1;
    int r = excam_decoder_decode(dec, buf, size);
    free(buf);
    if (r == EXCAM_ERROR) return fail("excam_decoder_decode");
    if (r == EXCAM_AGAIN) continue; /* a hidden frame */
    ExcamPicture pic;
    if (excam_decoder_get_picture(dec, &pic) != EXCAM_OK) return fail("excam_decoder_get_picture");
    for (int k = 0; k < 3; k++) {
      size_t pw = k ? (pic.width + 1) / 2 : pic.width, ph = k ? (pic.height + 1) / 2 : pic.height;
      for (size_t row = 0; row < ph; row++) fwrite(pic.planes[k] + row * pic.strides[k], 1, pw, yuv);
    }
    shown++;
  }
  excam_decoder_free(dec);
  fclose(ivf);
  if (fclose(yuv)) return perror(argv[3]), 1;

  /* ExCamera[4, 2]: chunks of 4 frames on 2 threads, straight to IVF. */
  if (excam_encode_parallel(&cfg, clip, frames, 4, 2, argv[4], NULL)) return fail("excam_encode_parallel");
  free(clip);
  printf("excam %s: %zu frames %ux%u encoded, %zu decoded\n", excam_version(), frames, w, h, shown);
  return 0;
}
