/* excam C API. Written to match what cbindgen (cbindgen.toml) emits;
 * tests/c_program.rs checks every exported function is declared here. */
#ifndef EXCAM_H
#define EXCAM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Success. */
#define EXCAM_OK 0
/* Failure; excam_last_error() says why. */
#define EXCAM_ERROR -1
/* No packet or picture available yet (not an error). */
#define EXCAM_AGAIN 1
/* The encoder was flushed and every packet was taken. */
#define EXCAM_EOF 2

/* Opaque decoder. */
typedef struct ExcamDecoder ExcamDecoder;
/* Opaque encoder. */
typedef struct ExcamEncoder ExcamEncoder;

/* Encoder configuration. Fill it with excam_config_default first. */
typedef struct ExcamConfig {
  uint32_t width;
  uint32_t height;
  uint32_t fps_num;
  uint32_t fps_den;
  /* Quantizer 0..63 (lower is better quality). */
  uint32_t quantizer;
  /* Target bitrate kbit/s; must be 0 (no rate control yet). */
  uint32_t bitrate_kbps;
  /* Key frame interval; 0 = only the first frame. */
  uint32_t keyint;
  /* Speed 0..8. */
  uint32_t speed;
} ExcamConfig;

/* One compressed frame; data owned by the encoder until its next call. */
typedef struct ExcamPacket {
  const uint8_t *data;
  size_t size;
  uint64_t pts;
  int key;
} ExcamPacket;

/* A decoded I420 picture owned by the decoder until its next call. */
typedef struct ExcamPicture {
  uint32_t width;
  uint32_t height;
  const uint8_t *planes[3];
  size_t strides[3];
} ExcamPicture;

/* Packets from excam_encode_parallel; free with excam_packets_free. */
typedef struct ExcamPackets {
  ExcamPacket *packets;
  size_t count;
} ExcamPackets;

#ifdef __cplusplus
extern "C" {
#endif

const char *excam_last_error(void);
const char *excam_version(void);
int excam_config_default(ExcamConfig *cfg, uint32_t width, uint32_t height);
ExcamEncoder *excam_encoder_new(const ExcamConfig *cfg);
int excam_encoder_send_frame(ExcamEncoder *enc, const uint8_t *const *planes, const size_t *strides);
int excam_encoder_receive_packet(ExcamEncoder *enc, ExcamPacket *pkt);
void excam_encoder_free(ExcamEncoder *enc);
ExcamDecoder *excam_decoder_new(void);
int excam_decoder_decode(ExcamDecoder *dec, const uint8_t *data, size_t size);
int excam_decoder_get_picture(const ExcamDecoder *dec, ExcamPicture *pic);
void excam_decoder_free(ExcamDecoder *dec);
int excam_encode_parallel(const ExcamConfig *cfg, const uint8_t *i420, size_t count, uint32_t chunk,
                          uint32_t threads, const char *ivf_path, ExcamPackets *out);
void excam_packets_free(ExcamPackets *p);

#ifdef __cplusplus
}
#endif

#endif /* EXCAM_H */
