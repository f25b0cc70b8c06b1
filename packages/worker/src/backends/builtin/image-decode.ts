import sharp, { type Metadata, type Sharp } from 'sharp';
import { InputDecodeError } from '../../errors.js';

/**
 * Opens an image with sharp and checks it decodes fully; a corrupt or truncated file fails
 * here with a clear reason instead of deep inside a model.
 */
export async function openImage(file: string): Promise<{ image: Sharp; metadata: Metadata }> {
  try {
    const image = sharp(file, { failOn: 'error', limitInputPixels: 268_402_689 });
    const metadata = await image.metadata();
    if (!metadata.width || !metadata.height) throw new Error('no width or height in the header');
    // Decode the pixels once: headers of broken files often parse fine.
    await image.clone().raw().toBuffer();
    return { image, metadata };
  } catch (err) {
    throw new InputDecodeError(`the image cannot be decoded (${err instanceof Error ? err.message.trim() : String(err)})`, { cause: err });
  }
}
