/** The kinds of media a job can carry. */
export type Modality = 'image' | 'audio' | 'video' | 'text';

export const MODALITIES: readonly Modality[] = ['image', 'audio', 'video', 'text'];

/** Media types each modality accepts, as detected from the bytes. */
export const SUPPORTED_MEDIA_TYPES: Readonly<Record<Modality, readonly string[]>> = {
  image: ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/tiff', 'image/avif', 'image/bmp'],
  audio: [
    'audio/wav',
    'audio/mpeg',
    'audio/flac',
    'audio/ogg',
    'audio/opus',
    'audio/aac',
    'audio/mp4',
    'audio/x-m4a',
    'audio/webm',
    'audio/aiff',
  ],
  video: ['video/mp4', 'video/webm', 'video/quicktime', 'video/x-matroska', 'video/x-msvideo', 'video/ogg'],
  text: ['text/plain'],
};

/** Aliases that detectors report for types above. */
const MEDIA_TYPE_ALIASES: Readonly<Record<string, string>> = {
  'audio/vnd.wave': 'audio/wav',
  'audio/wave': 'audio/wav',
  'audio/x-wav': 'audio/wav',
  'audio/x-flac': 'audio/flac',
  'audio/x-aiff': 'audio/aiff',
  'audio/m4a': 'audio/x-m4a',
  'image/x-ms-bmp': 'image/bmp',
  'video/matroska': 'video/x-matroska',
};

/** Normalises a detected media type to the name used in SUPPORTED_MEDIA_TYPES. */
export function normaliseMediaType(mediaType: string): string {
  const lower = mediaType.trim().toLowerCase();
  return MEDIA_TYPE_ALIASES[lower] ?? lower;
}

/** The modality of a media type, or undefined when no pipeline supports it. */
export function modalityOf(mediaType: string): Modality | undefined {
  const normalised = normaliseMediaType(mediaType);
  for (const modality of MODALITIES) {
    if (SUPPORTED_MEDIA_TYPES[modality].includes(normalised)) return modality;
  }
  return undefined;
}

/** A sentence listing what is supported, for refusals. */
export function describeSupportedMedia(modalities: readonly Modality[] = MODALITIES): string {
  const names: Record<Modality, string> = {
    image: 'images (PNG, JPEG, WebP, GIF, TIFF, AVIF, BMP)',
    audio: 'audio (WAV, MP3, FLAC, Ogg/Opus, AAC/M4A, WebM, AIFF)',
    video: 'video (MP4, WebM, QuickTime, Matroska, AVI, Ogg)',
    text: 'UTF-8 text',
  };
  return modalities.map((m) => names[m]).join(', ');
}
